-- Least-privilege PostgreSQL roles for vcci-nb. Run as a superuser (or the RDS master user) in
-- the application database. Idempotent: safe to run again. Set the passwords separately:
--   ALTER ROLE vcci_diag PASSWORD '...';  ALTER ROLE vcci_mitigate PASSWORD '...';
-- The lab creates the same roles in vcci_lab/schema.sql; this file is the one to use elsewhere.
--
--   vcci_diag      diagnostics: pg_monitor (pg_stat_activity with every query, pg_locks,
--                  pg_stat_statements, pg_settings) and SELECT on the tables. No writes.
--   vcci_mitigate  the guarded actions (vcci_nb/actions/postgres/), and only those:
--                  pg_signal_backend   TerminateSessions (never superusers: PostgreSQL itself
--                                      refuses to let a non-superuser signal them)
--                  pg_read_all_stats   to see which sessions are idle/active, since when, and
--                                      their queries (the plan lists them)
--                  member of the owner VacuumAnalyze, CreateIndex (CONCURRENTLY), dropping an
--                                      invalid leftover index; the owner role is NOLOGIN
--                  ALTER SYSTEM on max_connections only (PostgreSQL 15+), pg_reload_conf() and
--                                      pg_file_settings so that the written value and
--                                      pending_restart can be checked
--                  SELECT on the tables for the probe EXPLAIN of CreateIndex
--                  member of the application roles   RollbackPrepared: PostgreSQL lets only the
--                                      role that prepared a transaction (or a superuser) finish it,
--                                      so the action does SET ROLE <owner>; ROLLBACK PREPARED
--                  vcci_ops.drop_inactive_replication_slot(name)   DropReplicationSlot, without
--                                      REPLICATION or superuser (SECURITY DEFINER, inactive slots only)
--   vcci_owner     owns the tables; NOLOGIN (nobody works as the owner directly).

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vcci_owner') THEN
    CREATE ROLE vcci_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vcci_diag') THEN
    CREATE ROLE vcci_diag LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vcci_mitigate') THEN
    CREATE ROLE vcci_mitigate LOGIN;
  END IF;
END
$$;

ALTER ROLE vcci_diag NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
ALTER ROLE vcci_mitigate NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5;
-- Diagnostics sessions must never hang on a lock or run away.
ALTER ROLE vcci_diag SET statement_timeout = '5s';
ALTER ROLE vcci_diag SET lock_timeout = '1s';
ALTER ROLE vcci_diag SET default_transaction_read_only = on;

GRANT pg_monitor TO vcci_diag;
GRANT USAGE ON SCHEMA public TO vcci_diag, vcci_mitigate;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO vcci_diag, vcci_mitigate;

GRANT pg_signal_backend TO vcci_mitigate;
-- Without it, other roles' sessions show state/query/backend_start as NULL, so nothing can be
-- matched by state and age (the action then reads through DATABASE_URL's vcci_diag instead).
GRANT pg_read_all_stats TO vcci_mitigate;
GRANT vcci_owner TO vcci_mitigate;
GRANT ALTER SYSTEM ON PARAMETER max_connections TO vcci_mitigate;
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO vcci_mitigate;
-- So that SetMaxConnections can read back the value it wrote to postgresql.auto.conf.
GRANT SELECT ON pg_file_settings TO vcci_mitigate;
GRANT EXECUTE ON FUNCTION pg_show_all_file_settings() TO vcci_mitigate;
-- RollbackPrepared (SET ROLE to the role that prepared the transaction). Name your application roles.
GRANT vcci_app, vcci_worker TO vcci_mitigate;

-- DropReplicationSlot: one SECURITY DEFINER function instead of REPLICATION (run as a superuser).
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
GRANT USAGE ON SCHEMA vcci_ops TO vcci_mitigate;
GRANT EXECUTE ON FUNCTION vcci_ops.drop_inactive_replication_slot(name) TO vcci_mitigate;
