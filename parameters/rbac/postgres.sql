-- Least-privilege PostgreSQL roles for vcci-nb. Run with psql as a superuser (or the RDS master
-- user) in the application database, after the application's own roles and tables exist.
-- Idempotent: safe to run again (after a migration adds tables, run it again for their grants).
--
--   psql -v ON_ERROR_STOP=1 -d vcci_production -f parameters/rbac/postgres.sql
--
-- Every role name is a psql variable with the lab's name as default; a platform with other names
-- sets them (the lab's `other` flavour loads this file under its defaults, then renames):
--
--   -v owner_role=vcci_owner            owns the tables (the platform's; NOLOGIN, created if missing)
--   -v xact_roles=vcci_app,vcci_worker  the roles that PREPARE TRANSACTION (comma-separated)
--   -v diag_role=vcci_diag  -v mitigate_role=vcci_mitigate  -v maintainer_role=vcci_maintainer
--   -v index_builder_role=vcci_index_builder  -v xact_resolver_role=vcci_xact_resolver
--   -v slot_dropper_role=vcci_slot_dropper
--   -v schema=public                    the schema of the application's tables
--   -v diag_session_defaults=on         statement/lock timeouts and read-only transactions for diag_role
--
-- Passwords are set separately (ALTER ROLE … PASSWORD '…'), never in this file. Each login role is
-- one identity of the profile (parameters/environments/*.yaml, connections:), used only for:
--
--   diag_role           diagnostics (every notebook): pg_monitor, SELECT on the tables, read-only
--                       transactions, short statement and lock timeouts. No writes.
--   mitigate_role       the mitigation role, and only this:
--                         pg_signal_backend   postgres.terminate (never superusers: PostgreSQL itself
--                                             refuses to let a non-superuser signal them)
--                         pg_read_all_stats   to see which sessions are idle/active, since when, and
--                                             their queries (the plan lists them)
--                         ALTER SYSTEM ON PARAMETER max_connections (PostgreSQL 15+), pg_reload_conf()
--                                             and pg_file_settings: postgres.max_connections, and
--                                             reading back the written value and pending_restart
--                       It owns nothing, is no member of the owner or of the application roles, and
--                       has no privilege on the tables: DELETE, TRUNCATE, DROP, CREATE TABLE and
--                       ALTER TABLE are refused (tests/actions/test_least_privilege.py).
--   maintainer_role     postgres.vacuum_analyze only. PostgreSQL 17+: MAINTAIN on the tables (VACUUM,
--                       ANALYZE; it owns nothing). Before 17 PostgreSQL lets only a table's owner (or
--                       the database's owner, or a superuser) VACUUM it, and VACUUM cannot run in a
--                       SECURITY DEFINER function or a transaction, so no narrower grant exists: the
--                       role is a member of owner_role, which is why it is its own identity.
--   index_builder_role  postgres.create_index only (CREATE INDEX CONCURRENTLY, dropping an invalid
--                       leftover of a failed build). CREATE INDEX needs the table's owner, in every
--                       version: member of owner_role.
--   xact_resolver_role  postgres.rollback_prepared only. ROLLBACK/COMMIT PREPARED is allowed to the
--                       role that prepared the transaction (or a superuser): member of xact_roles, so
--                       the action can SET ROLE to the transaction's owner for that one statement.
--   slot_dropper_role   postgres.drop_replication_slot only: EXECUTE on
--                       vcci_ops.drop_inactive_replication_slot(name) (SECURITY DEFINER, inactive
--                       slots only), instead of REPLICATION or superuser. Nothing on the tables.
--
-- Note: PostgreSQL 15 no longer lets PUBLIC create objects in schema public, but a database created
-- by an older version keeps that grant (dump/restore, pg_upgrade). There, every role may CREATE
-- TABLE in public; check with \dn+ and REVOKE CREATE ON SCHEMA public FROM PUBLIC if nothing needs it.

\if :{?owner_role} \else \set owner_role vcci_owner \endif
\if :{?xact_roles} \else \set xact_roles vcci_app,vcci_worker \endif
\if :{?diag_role} \else \set diag_role vcci_diag \endif
\if :{?mitigate_role} \else \set mitigate_role vcci_mitigate \endif
\if :{?maintainer_role} \else \set maintainer_role vcci_maintainer \endif
\if :{?index_builder_role} \else \set index_builder_role vcci_index_builder \endif
\if :{?xact_resolver_role} \else \set xact_resolver_role vcci_xact_resolver \endif
\if :{?slot_dropper_role} \else \set slot_dropper_role vcci_slot_dropper \endif
\if :{?schema} \else \set schema public \endif
\if :{?diag_session_defaults} \else \set diag_session_defaults on \endif

-- Quiet on a second run ("already a member", "already exists"); warnings and errors still show.
SET client_min_messages = warning;

SELECT current_setting('server_version_num')::int >= 150000 AS has_parameter_grants,
       current_setting('server_version_num')::int >= 170000 AS has_maintain \gset

-- The roles, created when missing.
SELECT format('CREATE ROLE %I NOLOGIN', :'owner_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', r)
FROM unnest(ARRAY[:'diag_role', :'mitigate_role', :'maintainer_role', :'index_builder_role',
                  :'xact_resolver_role', :'slot_dropper_role']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE :"diag_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
ALTER ROLE :"mitigate_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 10;
ALTER ROLE :"maintainer_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3;
ALTER ROLE :"index_builder_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3;
ALTER ROLE :"xact_resolver_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3;
ALTER ROLE :"slot_dropper_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3;

-- An earlier version of this file made the mitigation role a member of the owner and of the
-- application roles: take those memberships back.
SELECT format('REVOKE %I FROM %I', m.rolname, :'mitigate_role')
FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.roleid JOIN pg_roles u ON u.oid = a.member
WHERE u.rolname = :'mitigate_role'
  AND (m.rolname = :'owner_role' OR m.rolname = ANY (string_to_array(:'xact_roles', ','))) \gexec
REVOKE ALL ON ALL TABLES IN SCHEMA :"schema" FROM :"mitigate_role";
SELECT 'REVOKE EXECUTE ON FUNCTION vcci_ops.drop_inactive_replication_slot(name) FROM ' || quote_ident(:'mitigate_role')
WHERE to_regprocedure('vcci_ops.drop_inactive_replication_slot(name)') IS NOT NULL \gexec
SELECT 'REVOKE USAGE ON SCHEMA vcci_ops FROM ' || quote_ident(:'mitigate_role')
WHERE to_regnamespace('vcci_ops') IS NOT NULL \gexec

-- Diagnostics.
\if :diag_session_defaults
-- Diagnostics sessions must never hang on a lock or run away, nor write by mistake.
ALTER ROLE :"diag_role" SET statement_timeout = '5s';
ALTER ROLE :"diag_role" SET lock_timeout = '1s';
ALTER ROLE :"diag_role" SET default_transaction_read_only = on;
\endif
GRANT pg_monitor TO :"diag_role";
GRANT USAGE ON SCHEMA :"schema" TO :"diag_role";
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"diag_role";

-- The mitigation role: terminate sessions, set max_connections.
GRANT pg_signal_backend TO :"mitigate_role";
-- Without it, other roles' sessions show state/query/backend_start as NULL, so nothing can be
-- matched by state and age (the action then reads through the diagnostics identity instead).
GRANT pg_read_all_stats TO :"mitigate_role";
\if :has_parameter_grants
GRANT ALTER SYSTEM ON PARAMETER max_connections TO :"mitigate_role";
\else
\echo 'PostgreSQL before 15 has no GRANT ALTER SYSTEM ON PARAMETER: postgres.max_connections needs a superuser there'
\endif
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO :"mitigate_role";
-- So that postgres.max_connections can read back the value it wrote to postgresql.auto.conf.
GRANT SELECT ON pg_file_settings TO :"mitigate_role";
GRANT EXECUTE ON FUNCTION pg_show_all_file_settings() TO :"mitigate_role";

-- VACUUM (ANALYZE): MAINTAIN from PostgreSQL 17, the owner's membership before.
\if :has_maintain
SELECT format('REVOKE %I FROM %I', :'owner_role', :'maintainer_role')
WHERE pg_has_role(:'maintainer_role', :'owner_role', 'MEMBER') \gexec
GRANT USAGE ON SCHEMA :"schema" TO :"maintainer_role";
GRANT MAINTAIN ON ALL TABLES IN SCHEMA :"schema" TO :"maintainer_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA :"schema" GRANT MAINTAIN ON TABLES TO :"maintainer_role";
\else
GRANT :"owner_role" TO :"maintainer_role";
\endif

-- CREATE INDEX CONCURRENTLY.
GRANT :"owner_role" TO :"index_builder_role";

-- ROLLBACK PREPARED: membership in each role that prepares transactions.
SELECT format('GRANT %I TO %I', btrim(r), :'xact_resolver_role')
FROM unnest(string_to_array(:'xact_roles', ',')) AS r WHERE btrim(r) <> '' \gexec

-- postgres.drop_replication_slot: one SECURITY DEFINER function instead of REPLICATION (run as a superuser).
CREATE SCHEMA IF NOT EXISTS vcci_ops;
CREATE OR REPLACE FUNCTION vcci_ops.drop_inactive_replication_slot(slot name) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = slot) THEN
    RAISE EXCEPTION 'no replication slot %', slot USING ERRCODE = 'undefined_object';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = slot AND active) THEN
    RAISE EXCEPTION 'replication slot % is active: stop its consumer first', slot USING ERRCODE = 'object_in_use';
  END IF;
  PERFORM pg_drop_replication_slot(slot);
  RETURN true;
END
$$;
REVOKE ALL ON FUNCTION vcci_ops.drop_inactive_replication_slot(name) FROM PUBLIC;
GRANT USAGE ON SCHEMA vcci_ops TO :"slot_dropper_role";
GRANT EXECUTE ON FUNCTION vcci_ops.drop_inactive_replication_slot(name) TO :"slot_dropper_role";
