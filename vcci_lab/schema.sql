-- The lab's vcci_production database: shaped like the platform, small enough to build in seconds.
-- Run as the superuser in database vcci_production. Passwords are set afterwards, per lab.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

CREATE ROLE vcci_owner NOLOGIN;
CREATE ROLE vcci_app LOGIN CONNECTION LIMIT 20;
CREATE ROLE vcci_worker LOGIN CONNECTION LIMIT 10;
-- The diagnostics and mitigation identities are not created here: the lab loads
-- parameters/rbac/postgres.sql after this file, as a platform would (vcci_lab/_postgres.py).

ALTER SCHEMA public OWNER TO vcci_owner;
SET ROLE vcci_owner;

BEGIN;
CREATE TABLE tenants (
    id serial PRIMARY KEY,
    slug text UNIQUE NOT NULL,
    name text NOT NULL,
    plan text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE suppliers (
    id serial PRIMARY KEY,
    tenant_id int NOT NULL REFERENCES tenants,
    name text NOT NULL,
    country text NOT NULL
);
CREATE TABLE emissions (
    id bigserial PRIMARY KEY,
    tenant_id int NOT NULL,
    supplier_id int,
    calculated_at timestamptz NOT NULL,
    scope3_category smallint,
    activity text,
    kgco2e double precision,
    method text
);
CREATE TABLE django_migrations (
    id serial PRIMARY KEY,
    app text NOT NULL,
    name text NOT NULL,
    applied timestamptz NOT NULL
);

INSERT INTO tenants (slug, name, plan, created_at)
SELECT slug, initcap(replace(slug, '-', ' ')),
       (ARRAY['enterprise', 'business', 'starter'])[1 + (i % 3)],
       now() - make_interval(days => 30 + i * 17)
FROM (
    SELECT i, (ARRAY['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'wonka', 'tyrell',
                     'cyberdyne', 'soylent', 'massive', 'aperture', 'vandelay', 'oscorp', 'gringotts',
                     'monarch', 'nakatomi', 'prestige', 'sirius', 'duff', 'krusty', 'pied-piper', 'dunder',
                     'bluth'])[1 + (i - 1) % 25]
           || CASE WHEN i > 25 THEN '-eu' ELSE '' END AS slug
    FROM generate_series(1, 50) AS i
) AS t;

INSERT INTO suppliers (tenant_id, name, country)
SELECT 1 + (i % 50), 'Supplier ' || i,
       (ARRAY['DE', 'US', 'CN', 'IN', 'FR', 'GB', 'BR', 'JP', 'MX', 'PL'])[1 + (i % 10)]
FROM generate_series(1, 2000) AS i;

-- 500,000 emissions over the last year. Tenants are skewed (a few big ones) as on the platform.
INSERT INTO emissions (tenant_id, supplier_id, calculated_at, scope3_category, activity, kgco2e, method)
SELECT t, 1 + ((t - 1) + 50 * (i % 40)) % 2000,
       now() - make_interval(secs => (i * 63.07)::int % 31536000),
       1 + (i % 15),
       (ARRAY['purchased goods', 'capital goods', 'fuel and energy', 'upstream transport', 'waste',
              'business travel', 'commuting', 'leased assets', 'downstream transport', 'processing',
              'use of products', 'end of life', 'franchises', 'investments', 'other'])[1 + (i % 15)],
       round((random() * 5000)::numeric, 3)::double precision,
       (ARRAY['spend-based', 'activity-based', 'supplier-specific', 'hybrid'])[1 + (i % 4)]
FROM (
    SELECT i, 1 + least(49, floor(50 * power(random(), 2))::int) AS t
    FROM generate_series(1, 500000) AS i
) AS g;
CREATE INDEX idx_emissions_tenant_date ON emissions (tenant_id, calculated_at);
CREATE INDEX idx_suppliers_tenant ON suppliers (tenant_id);

INSERT INTO django_migrations (app, name, applied)
SELECT app, name, applied FROM (VALUES
    ('contenttypes', '0001_initial', now() - interval '400 days'),
    ('auth', '0001_initial', now() - interval '400 days'),
    ('tenants', '0001_initial', now() - interval '380 days'),
    ('emissions', '0001_initial', now() - interval '380 days'),
    ('emissions', '0002_scope3_category', now() - interval '200 days'),
    ('suppliers', '0001_initial', now() - interval '150 days'),
    ('emissions', '0003_method', now() - interval '60 days'),
    ('reports', '0001_initial', now() - interval '20 days'),
    ('emissions', '0004_calculated_at_tz', now() - interval '3 days'),
    ('emissions', '0005_add_activity_text', now() - interval '5 hours')
) AS m (app, name, applied);
COMMIT;
RESET ROLE;

GRANT USAGE ON SCHEMA public TO vcci_app, vcci_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO vcci_app, vcci_worker;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO vcci_app, vcci_worker;
ANALYZE;
