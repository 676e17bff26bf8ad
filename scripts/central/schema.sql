-- Central schema for mikrotik-edge agents (PostgreSQL 15+).
--
--   psql -v ON_ERROR_STOP=1 -d DB -f scripts/central/schema.sql
--
-- Idempotent: loading it again over itself changes nothing (CREATE ... IF NOT
-- EXISTS, CREATE OR REPLACE FUNCTION). Table and column names follow the
-- design (docs: mikrotik-integration-v2, section 8) with a `site_id` column on
-- every row that belongs to a site.
--
-- Entry points (see README "Central side"):
--   ingest_batch(site_id text, batch json) returns jsonb
--   site_desired_state(site_id text) returns jsonb
--   site_desired_version(site_id text) returns bigint
-- All are SECURITY DEFINER: a PostgREST role only needs EXECUTE on them, no
-- table privileges. When `request.jwt.claims` is set (PostgREST, or the
-- mikrotik-central gateway), its `site_id` claim must equal the argument.

SET client_min_messages = warning;

-- ---------------------------------------------------------------- sites

CREATE TABLE IF NOT EXISTS sites (
    site_id        text PRIMARY KEY,
    -- sha256 hex of the site's bearer token (mikrotik-central add-site);
    -- NULL for sites that only upload through PostgREST with a JWT.
    token_hash     text UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_upload_at timestamptz
);

-- ---------------------------------------------------------------- raw events (idempotency)

-- One row per (site, stream): the highest sequence number up to which the
-- stream's prev chain is complete.
CREATE TABLE IF NOT EXISTS agent_streams (
    site_id        text NOT NULL,
    stream         text NOT NULL,
    stored_through bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, stream)
);

-- Every event as uploaded, once: the columns hold the envelope (stream,
-- seq, prev, type, at) and `body` the rest of the event (the envelope keys
-- and `site` are not repeated in it; `at` is the timestamptz column). Idempotency: ingest_batch holds the
-- stream's agent_streams row lock and skips seqs <= stored_through and seqs
-- already stored above it, so (site_id, stream, seq) is unique without a
-- unique index across partitions. Rows with seq <= stored_through may be
-- pruned without losing idempotency; rows above it must be kept.
-- Partitioned by month of received_at (server clock: a wrong agent clock
-- cannot scatter rows); partitions: edge_maintain_partitions() below.
CREATE TABLE IF NOT EXISTS agent_events (
    site_id     text NOT NULL,
    stream      text NOT NULL,
    seq         bigint NOT NULL,
    prev        bigint NOT NULL,
    type        text NOT NULL,
    at          timestamptz NOT NULL,
    body        jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, stream, seq, received_at)
) PARTITION BY RANGE (received_at);
-- The prev chain is followed over the rows above stored_through (a range
-- of the primary key): this index only cost space.
DROP INDEX IF EXISTS agent_events_prev_idx;

-- ---------------------------------------------------------------- design tables

CREATE TABLE IF NOT EXISTS mikrotik_profiles (
    id              bigserial PRIMARY KEY,
    site_id         text NOT NULL,
    name            text NOT NULL,
    service         text NOT NULL CHECK (service IN ('hotspot', 'pppoe')),
    rate_limit      text,
    session_timeout text,
    shared_users    text,
    uptime_limit    text,
    is_active       boolean NOT NULL DEFAULT true,
    data            jsonb,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, service, name)
);

-- One row per login/logout. `data` (the event again) is no longer written:
-- the event is agent_events (site_id, seq); `seq` links to it.
-- Partitioned by month of created_at (the event's time).
CREATE TABLE IF NOT EXISTS user_activity_log (
    id          bigserial,
    site_id     text NOT NULL,
    username    text NOT NULL,
    type        text NOT NULL,          -- hotspot, pppoe
    action      text NOT NULL CHECK (action IN ('login', 'logout')),
    ip_address  inet,
    mac_address text,
    data        jsonb,                  -- before issue 23: the event as uploaded; now NULL
    created_at  timestamptz NOT NULL DEFAULT now(),  -- the event's time (agent clock)
    seq         bigint,                 -- agent_events.seq of the event
    PRIMARY KEY (site_id, id, created_at)
) PARTITION BY RANGE (created_at);
ALTER TABLE user_activity_log ADD COLUMN IF NOT EXISTS seq bigint;
CREATE INDEX IF NOT EXISTS user_activity_log_site_user_idx ON user_activity_log (site_id, username, created_at);
-- Time ranges (pages: logins today, 24 h activity): BRIN, rows arrive in
-- time order, a few pages per month instead of a B-tree entry per row.
DROP INDEX IF EXISTS user_activity_log_site_at_idx;
CREATE INDEX IF NOT EXISTS user_activity_log_created_brin ON user_activity_log USING brin (created_at);

-- Latest totals per site and username.
CREATE TABLE IF NOT EXISTS user_usage_stats (
    site_id        text NOT NULL,
    username       text NOT NULL,
    type           text NOT NULL,
    session_start  timestamptz,
    session_end    timestamptz,
    bytes_in       bigint DEFAULT 0,
    bytes_out      bigint DEFAULT 0,
    uptime_seconds bigint DEFAULT 0,
    last_updated   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, username)
);

CREATE TABLE IF NOT EXISTS mikrotik_connection_log (
    id         bigserial PRIMARY KEY,
    site_id    text NOT NULL,
    event      text NOT NULL,           -- connect, disconnect, error
    message    text,
    details    jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mikrotik_connection_log_site_idx ON mikrotik_connection_log (site_id, created_at);

-- One row per session. Partitioned by month of started_at; the primary
-- key carries site_id (and the partition key), and every lookup is by
-- (site_id, id) or (site_id, service, username, ...), so the table can be
-- distributed by site_id (docs/scale.md). At most one open row per
-- (site, service, username, active_id) is kept by ingest_batch (a unique
-- index would have to include started_at on a partitioned table).
CREATE TABLE IF NOT EXISTS sessions (
    id            bigserial,
    site_id       text NOT NULL,
    service       text NOT NULL,
    username      text NOT NULL,
    active_id     text NOT NULL DEFAULT '',
    session_id    text NOT NULL DEFAULT '',
    address       inet,
    mac_address   text,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    bytes_in      bigint,
    bytes_out     bigint,
    uptime_secs   bigint,
    end_reason    text,
    seen_at_start boolean NOT NULL DEFAULT false,
    login_seq     bigint,
    logout_seq    bigint,
    last_seq      bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, id, started_at)
) PARTITION BY RANGE (started_at);
-- Open sessions by key (ingest) and per site (fleet page: active count).
CREATE INDEX IF NOT EXISTS sessions_open_idx
    ON sessions (site_id, service, username, active_id) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS sessions_site_user_idx ON sessions (site_id, service, username);
-- Logouts whose login has not arrived yet (a gap): looked up per login.
CREATE INDEX IF NOT EXISTS sessions_no_login_idx
    ON sessions (site_id, service, username) WHERE login_seq IS NULL;

CREATE TABLE IF NOT EXISTS vouchers (
    id               bigserial PRIMARY KEY,
    site_id          text NOT NULL,
    code             text NOT NULL,
    password         text,
    profile_name     text,
    batch_id         text,
    valid_hours      integer,
    status           text NOT NULL DEFAULT 'created'
                     CHECK (status IN ('created', 'active', 'expired', 'migrated')),
    first_login_at   timestamptz,
    expires_at       timestamptz,
    ip_address       inet,
    mac_address      text,
    mikrotik_comment text,
    last_seen        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);

CREATE TABLE IF NOT EXISTS subscriptions (
    id             bigserial PRIMARY KEY,
    site_id        text NOT NULL,
    pppoe_username text NOT NULL,
    password       text,
    profile_name   text,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    comment        text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, pppoe_username)
);

-- Upgrades of the tables above (idempotent): deleted rows (an operator's
-- delete, never recreated), fractional validity (minute precision), and the
-- time of the newest operator intent per row (see README "One source of
-- truth"): set by the trigger below on an operator's own change, and by
-- the agent's intent events (`user_changed`, `user_created` via http/batch).
ALTER TABLE vouchers ADD COLUMN IF NOT EXISTS intent_at timestamptz;
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS intent_at timestamptz;
ALTER TABLE vouchers ALTER COLUMN valid_hours TYPE numeric;
ALTER TABLE vouchers DROP CONSTRAINT IF EXISTS vouchers_status_check;
ALTER TABLE vouchers ADD CONSTRAINT vouchers_status_check
    CHECK (status IN ('created', 'active', 'expired', 'migrated', 'deleted'));
ALTER TABLE subscriptions DROP CONSTRAINT IF EXISTS subscriptions_status_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check
    CHECK (status IN ('active', 'suspended', 'deleted'));

-- An operator's change to what the router should hold (status, password,
-- profile, comment) is an intent made now, unless the change comes from
-- an agent's event (ingest_batch sets edge.applying for its transaction),
-- which states its own time.
CREATE OR REPLACE FUNCTION _edge_intent_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('edge.applying', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.intent_at := coalesce(NEW.intent_at, now());
    ELSIF NEW.intent_at IS NOT DISTINCT FROM OLD.intent_at
          AND (NEW.status, NEW.password, NEW.profile_name)
              IS DISTINCT FROM (OLD.status, OLD.password, OLD.profile_name) THEN
        NEW.intent_at := now();
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS vouchers_intent_stamp ON vouchers;
CREATE TRIGGER vouchers_intent_stamp BEFORE INSERT OR UPDATE ON vouchers
    FOR EACH ROW EXECUTE FUNCTION _edge_intent_stamp();
DROP TRIGGER IF EXISTS subscriptions_intent_stamp ON subscriptions;
CREATE TRIGGER subscriptions_intent_stamp BEFORE INSERT OR UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION _edge_intent_stamp();

CREATE TABLE IF NOT EXISTS manual_users (
    site_id    text NOT NULL,
    service    text NOT NULL,
    username   text NOT NULL,
    profile    text,
    comment    text,
    data       jsonb,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (site_id, service, username)
);

CREATE TABLE IF NOT EXISTS alerts (
    id         bigserial PRIMARY KEY,
    site_id    text NOT NULL,
    name       text NOT NULL,
    message    text,
    data       jsonb,
    at         timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_site_idx ON alerts (site_id, at);

-- ---------------------------------------------------------------- operator side

-- Site settings an operator sets (`mikrotik-central set-site`): a display
-- name, the IANA time zone "today" is counted in (activations, revenue),
-- and the hotspot login URL printed as a QR code on voucher cards. The
-- agent does not report its router's zone, so it is set here; UTC until then.
CREATE OR REPLACE FUNCTION _edge_valid_tz(p text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM now() AT TIME ZONE p;
    RETURN p IS NOT NULL AND p <> '';
EXCEPTION WHEN others THEN
    RETURN false;
END
$$;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS name text;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS timezone text NOT NULL DEFAULT 'UTC';
ALTER TABLE sites ADD COLUMN IF NOT EXISTS hotspot_login_url text;
ALTER TABLE sites DROP CONSTRAINT IF EXISTS sites_timezone_check;
ALTER TABLE sites ADD CONSTRAINT sites_timezone_check CHECK (_edge_valid_tz(timezone));

-- Operators (`mikrotik-central add-operator`): people and tools using the
-- operator API and pages. A separate table from `sites`, so a site token
-- never authenticates an operator and an operator token never uploads.
CREATE TABLE IF NOT EXISTS operators (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    -- sha256 hex of the operator's bearer token, as sites.token_hash.
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled   boolean NOT NULL DEFAULT false
);

-- Every write made through the operator API or pages: who, when, what.
CREATE TABLE IF NOT EXISTS operator_audit (
    id       bigserial PRIMARY KEY,
    operator text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    site_id  text,
    action   text NOT NULL,
    target   text,
    detail   jsonb
);
CREATE INDEX IF NOT EXISTS operator_audit_site_idx ON operator_audit (site_id, at);

-- Exact money: sell and cost as `numeric` (never floats), from the API at
-- creation and from the comment of activation/creation events.
ALTER TABLE vouchers ADD COLUMN IF NOT EXISTS sell numeric;
ALTER TABLE vouchers ADD COLUMN IF NOT EXISTS cost numeric;
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS sell numeric;
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS cost numeric;
-- Activations per site and day with their price, read from the index alone
-- (fleet page; replaces vouchers_site_first_login_idx).
DROP INDEX IF EXISTS vouchers_site_first_login_idx;
CREATE INDEX IF NOT EXISTS vouchers_site_activation_idx ON vouchers (site_id, first_login_at)
    INCLUDE (sell) WHERE first_login_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS vouchers_site_batch_idx ON vouchers (site_id, batch_id);

-- Acknowledged alerts (operator API); open = not acknowledged.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acked_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS acked_by text;
CREATE INDEX IF NOT EXISTS alerts_open_idx ON alerts (site_id) WHERE acked_at IS NULL;
-- (Active sessions per site: sessions_open_started_idx, below.)
CREATE INDEX IF NOT EXISTS mikrotik_connection_log_site_id_idx ON mikrotik_connection_log (site_id, id);

-- A time as the operator API writes it: RFC 3339 in UTC, to the second.
CREATE OR REPLACE FUNCTION _edge_utc(p timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

-- ---------------------------------------------------------------- helpers

-- Raises 42501 when request.jwt.claims is set and its site_id differs.
CREATE OR REPLACE FUNCTION _edge_check_site(p_site text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_claims text := nullif(current_setting('request.jwt.claims', true), '');
    v_claim  text;
BEGIN
    IF p_site IS NULL OR p_site = '' THEN
        RAISE EXCEPTION 'site_id is required' USING ERRCODE = '22023';
    END IF;
    IF v_claims IS NULL THEN
        RETURN;  -- trusted caller (psql, a job): no claims
    END IF;
    BEGIN
        v_claim := v_claims::jsonb ->> 'site_id';
    EXCEPTION WHEN others THEN
        v_claim := NULL;
    END;
    IF v_claim IS DISTINCT FROM p_site THEN
        RAISE EXCEPTION 'site % may not act for site %', coalesce(v_claim, '(none)'), p_site
            USING ERRCODE = '42501';
    END IF;
END
$$;

-- A dotted IPv4 address casts without a subtransaction (the common case:
-- an EXCEPTION block costs one per call); anything else goes through
-- _edge_inet_try, which catches what does not parse.
CREATE OR REPLACE FUNCTION _edge_inet_try(p text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN btrim(p)::inet;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION _edge_inet(p text) RETURNS inet
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p IS NULL OR btrim(p) = '' THEN NULL
        WHEN p ~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
        THEN p::inet
        ELSE _edge_inet_try(p)
    END
$$;

CREATE OR REPLACE FUNCTION _edge_ts(p text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p IS NULL OR btrim(p) = '' THEN
        RETURN NULL;
    END IF;
    RETURN p::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- A JSON number that fits bigint, else NULL (null, missing, text, too big).
CREATE OR REPLACE FUNCTION _edge_int(p jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_typeof(p) = 'number'
             AND (p #>> '{}') ~ '^[0-9]{1,18}$' THEN (p #>> '{}')::bigint
        ELSE NULL
    END
$$;

-- A JSON number (hours, possibly fractional) as numeric, else NULL.
CREATE OR REPLACE FUNCTION _edge_num(p jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_typeof(p) = 'number' AND (p #>> '{}') ~ '^[0-9]{1,9}(\.[0-9]{1,12})?$'
        THEN (p #>> '{}')::numeric
        ELSE NULL
    END
$$;

CREATE OR REPLACE FUNCTION _edge_nz(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT nullif(p, '') $$;

-- A price field of one of our comments (`|`-field n, 1-based: 3 is
-- price_sell, 4 price_cost in both formats) as numeric: digits with an
-- optional decimal part, else NULL (empty, text, somebody else's comment).
CREATE OR REPLACE FUNCTION _edge_price(p_comment text, p_field integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN split_part(coalesce(p_comment, ''), '|', 1) IN ('VOUCHER_SYSTEM', 'PPPOE_SYSTEM')
                     AND split_part(p_comment, '|', p_field) ~ '^[0-9]{1,18}(\.[0-9]{1,6})?$'
                THEN split_part(p_comment, '|', p_field)::numeric END
$$;

-- Applies one new event to the design tables. Called by ingest_batch only,
-- once per (site, stream, seq).
CREATE OR REPLACE FUNCTION _edge_apply(p_site text, p_seq bigint, p_at timestamptz, e jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_type    text := e ->> 'type';
    v_service text := coalesce(_edge_nz(e ->> 'service'), 'hotspot');
    v_user    text := e ->> 'user';
    v_active  text := coalesce(e ->> 'active_id', '');
    v_sess    text := coalesce(e ->> 'session_id', '');
    v_in      bigint := _edge_int(e -> 'bytes_in');
    v_out     bigint := _edge_int(e -> 'bytes_out');
    v_uptime  bigint := _edge_int(e -> 'uptime_secs');
    v_mac     text := coalesce(_edge_nz(e ->> 'mac'), _edge_nz(e ->> 'caller_id'));
    v_id      bigint;
BEGIN
    IF v_type = 'login' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        v_id := NULL;
        IF coalesce((e ->> 'seen_at_start') = 'true', false) THEN
            -- Already online when the agent started: one session, not two.
            SELECT id INTO v_id FROM sessions
             WHERE site_id = p_site AND service = v_service AND username = v_user
               AND ended_at IS NULL
             ORDER BY (active_id = v_active) DESC, started_at DESC NULLS LAST, id DESC
             LIMIT 1;
            IF v_id IS NOT NULL THEN
                UPDATE sessions SET active_id = v_active, session_id = v_sess,
                       address = coalesce(_edge_inet(e ->> 'address'), address),
                       mac_address = coalesce(v_mac, mac_address),
                       seen_at_start = true,
                       login_seq = coalesce(login_seq, p_seq),
                       last_seq = greatest(last_seq, p_seq), updated_at = now()
                 WHERE site_id = p_site AND id = v_id;
            END IF;
        ELSE
            -- A logout that arrived before this login (gap filled later).
            SELECT id INTO v_id FROM sessions
             WHERE site_id = p_site AND service = v_service AND username = v_user
               AND active_id = v_active AND session_id = v_sess
               AND login_seq IS NULL AND logout_seq > p_seq
             ORDER BY logout_seq LIMIT 1;
            IF v_id IS NOT NULL THEN
                UPDATE sessions SET started_at = p_at, login_seq = p_seq,
                       address = _edge_inet(e ->> 'address'), mac_address = v_mac,
                       updated_at = now()
                 WHERE site_id = p_site AND id = v_id;
            ELSE
                -- A stale open row with the same key never got its logout.
                UPDATE sessions SET ended_at = p_at, end_reason = 'replaced', updated_at = now()
                 WHERE site_id = p_site AND service = v_service AND username = v_user
                   AND active_id = v_active AND ended_at IS NULL;
            END IF;
        END IF;
        IF v_id IS NULL THEN
            INSERT INTO sessions (site_id, service, username, active_id, session_id, address,
                                  mac_address, started_at, seen_at_start, login_seq, last_seq)
            VALUES (p_site, v_service, v_user, v_active, v_sess, _edge_inet(e ->> 'address'),
                    v_mac, p_at, coalesce((e ->> 'seen_at_start') = 'true', false), p_seq, p_seq);
        END IF;
        -- A seen_at_start login merged into an open session is not a new login.
        IF v_id IS NULL OR NOT coalesce((e ->> 'seen_at_start') = 'true', false) THEN
            INSERT INTO user_activity_log (site_id, username, type, action, ip_address, mac_address, seq, created_at)
            VALUES (p_site, v_user, v_service, 'login', _edge_inet(e ->> 'address'), v_mac, p_seq, p_at);
        END IF;
        IF v_service = 'hotspot' THEN
            UPDATE vouchers SET last_seen = greatest(coalesce(last_seen, p_at), p_at),
                   ip_address = coalesce(_edge_inet(e ->> 'address'), ip_address),
                   mac_address = coalesce(v_mac, mac_address)
             WHERE site_id = p_site AND code = v_user;
        END IF;

    ELSIF v_type = 'logout' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        INSERT INTO user_activity_log (site_id, username, type, action, ip_address, mac_address, seq, created_at)
        VALUES (p_site, v_user, v_service, 'logout', _edge_inet(e ->> 'address'), v_mac, p_seq, p_at);
        SELECT id INTO v_id FROM sessions
         WHERE site_id = p_site AND service = v_service AND username = v_user
           AND active_id = v_active AND ended_at IS NULL
         ORDER BY id DESC LIMIT 1;
        IF v_id IS NOT NULL THEN
            UPDATE sessions SET ended_at = p_at, end_reason = e ->> 'reason',
                   bytes_in = coalesce(v_in, bytes_in), bytes_out = coalesce(v_out, bytes_out),
                   uptime_secs = coalesce(v_uptime, uptime_secs),
                   session_id = CASE WHEN session_id = '' THEN v_sess ELSE session_id END,
                   logout_seq = p_seq, last_seq = greatest(last_seq, p_seq), updated_at = now()
             WHERE id = v_id;
        ELSE
            INSERT INTO sessions (site_id, service, username, active_id, session_id, started_at,
                                  ended_at, bytes_in, bytes_out, uptime_secs, end_reason,
                                  logout_seq, last_seq)
            VALUES (p_site, v_service, v_user, v_active, v_sess,
                    p_at - make_interval(secs => coalesce(v_uptime, 0)), p_at,
                    v_in, v_out, v_uptime, e ->> 'reason', p_seq, p_seq);
        END IF;
        INSERT INTO user_usage_stats AS u (site_id, username, type, session_start, session_end,
                                           bytes_in, bytes_out, uptime_seconds, last_updated)
        VALUES (p_site, v_user, v_service, p_at - make_interval(secs => coalesce(v_uptime, 0)), p_at,
                v_in, v_out, coalesce(v_uptime, 0), p_at)
        ON CONFLICT (site_id, username) DO UPDATE
           SET type = EXCLUDED.type, session_start = EXCLUDED.session_start,
               session_end = EXCLUDED.session_end, bytes_in = EXCLUDED.bytes_in,
               bytes_out = EXCLUDED.bytes_out, uptime_seconds = EXCLUDED.uptime_seconds,
               last_updated = EXCLUDED.last_updated
         WHERE u.last_updated <= EXCLUDED.last_updated;
        IF v_service = 'hotspot' THEN
            UPDATE vouchers SET last_seen = greatest(coalesce(last_seen, p_at), p_at)
             WHERE site_id = p_site AND code = v_user;
        END IF;

    ELSIF v_type = 'usage' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        UPDATE sessions SET bytes_in = coalesce(v_in, bytes_in), bytes_out = coalesce(v_out, bytes_out),
               uptime_secs = coalesce(v_uptime, uptime_secs),
               last_seq = p_seq, updated_at = now()
         WHERE site_id = p_site AND service = v_service AND username = v_user
           AND active_id = v_active AND ended_at IS NULL AND last_seq < p_seq;
        INSERT INTO user_usage_stats AS u (site_id, username, type, session_start, session_end,
                                           bytes_in, bytes_out, uptime_seconds, last_updated)
        VALUES (p_site, v_user, v_service, p_at - make_interval(secs => coalesce(v_uptime, 0)), NULL,
                v_in, v_out, coalesce(v_uptime, 0), p_at)
        ON CONFLICT (site_id, username) DO UPDATE
           SET type = EXCLUDED.type, session_start = EXCLUDED.session_start,
               session_end = NULL, bytes_in = EXCLUDED.bytes_in,
               bytes_out = EXCLUDED.bytes_out, uptime_seconds = EXCLUDED.uptime_seconds,
               last_updated = EXCLUDED.last_updated
         WHERE u.last_updated <= EXCLUDED.last_updated;
        IF v_service = 'hotspot' THEN
            UPDATE vouchers SET last_seen = greatest(coalesce(last_seen, p_at), p_at)
             WHERE site_id = p_site AND code = v_user;
        END IF;

    ELSIF v_type = 'voucher_activated' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        INSERT INTO vouchers AS v (site_id, code, batch_id, valid_hours, status, first_login_at,
                                   expires_at, mac_address, last_seen, mikrotik_comment, sell, cost)
        VALUES (p_site, v_user, _edge_nz(e ->> 'batch_id'), _edge_num(e -> 'valid_hours'), 'active',
                _edge_ts(e ->> 'first_login_at'), _edge_ts(e ->> 'expires_at'),
                _edge_nz(e ->> 'mac'), p_at, _edge_nz(e ->> 'comment'),
                _edge_price(e ->> 'comment', 3), _edge_price(e ->> 'comment', 4))
        ON CONFLICT (site_id, code) DO UPDATE
           SET status = CASE
                   -- an expiry of this same term already arrived (out of order)
                   WHEN v.status = 'expired' AND v.expires_at IS NOT DISTINCT FROM EXCLUDED.expires_at
                   THEN 'expired' ELSE 'active' END,
               batch_id = coalesce(EXCLUDED.batch_id, v.batch_id),
               valid_hours = coalesce(EXCLUDED.valid_hours, v.valid_hours),
               first_login_at = coalesce(EXCLUDED.first_login_at, v.first_login_at),
               expires_at = coalesce(EXCLUDED.expires_at, v.expires_at),
               mac_address = coalesce(EXCLUDED.mac_address, v.mac_address),
               last_seen = greatest(coalesce(v.last_seen, EXCLUDED.last_seen), EXCLUDED.last_seen),
               -- The comment as written on the router, activation stamps
               -- included: a recreation keeps the voucher's term.
               mikrotik_comment = coalesce(EXCLUDED.mikrotik_comment, v.mikrotik_comment),
               -- The price set at creation stays; else the comment's.
               sell = coalesce(v.sell, EXCLUDED.sell),
               cost = coalesce(v.cost, EXCLUDED.cost),
               updated_at = now();

    ELSIF v_type = 'voucher_corrected' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        UPDATE vouchers SET first_login_at = coalesce(_edge_ts(e ->> 'first_login_at'), first_login_at),
               expires_at = coalesce(_edge_ts(e ->> 'expires_at'), expires_at),
               mikrotik_comment = coalesce(_edge_nz(e ->> 'comment'), mikrotik_comment),
               updated_at = now()
         WHERE site_id = p_site AND code = v_user;

    ELSIF v_type = 'recreate_blocked' THEN
        INSERT INTO alerts (site_id, name, message, data, at)
        VALUES (p_site, 'recreate_blocked',
                format('%s %s missing on the router and not recreated: %s', v_service,
                       coalesce(v_user, '?'), coalesce(e ->> 'reason', '')),
                e, p_at);

    ELSIF v_type = 'user_created' AND coalesce(e ->> 'via', '') <> 'sync' THEN
        -- Made at the site (user API, create-batch): an operator intent,
        -- applied unless the row holds a newer one.
        IF v_user IS NULL THEN RETURN; END IF;
        IF v_service = 'pppoe' THEN
            INSERT INTO subscriptions AS s (site_id, pppoe_username, password, profile_name, status,
                                            comment, intent_at, sell, cost)
            VALUES (p_site, v_user, e ->> 'password', _edge_nz(e ->> 'profile'),
                    CASE WHEN (e ->> 'disabled') = 'true' THEN 'suspended' ELSE 'active' END,
                    e ->> 'comment', p_at, _edge_price(e ->> 'comment', 3),
                    _edge_price(e ->> 'comment', 4))
            ON CONFLICT (site_id, pppoe_username) DO UPDATE
               SET password = EXCLUDED.password, profile_name = EXCLUDED.profile_name,
                   status = EXCLUDED.status, comment = EXCLUDED.comment,
                   sell = EXCLUDED.sell, cost = EXCLUDED.cost,
                   intent_at = EXCLUDED.intent_at, updated_at = now()
             WHERE s.intent_at IS NULL OR s.intent_at <= EXCLUDED.intent_at;
        ELSE
            INSERT INTO vouchers AS v (site_id, code, password, profile_name, mikrotik_comment,
                                       batch_id, valid_hours, status, intent_at, sell, cost)
            VALUES (p_site, v_user, e ->> 'password', _edge_nz(e ->> 'profile'), e ->> 'comment',
                    _edge_nz(split_part(coalesce(e ->> 'comment', ''), '|', 2)),
                    CASE WHEN split_part(coalesce(e ->> 'comment', ''), '|', 5) ~ '^[0-9]{1,9}(\.[0-9]{1,12})?$'
                         THEN split_part(e ->> 'comment', '|', 5)::numeric END,
                    'created', p_at, _edge_price(e ->> 'comment', 3), _edge_price(e ->> 'comment', 4))
            ON CONFLICT (site_id, code) DO UPDATE
               SET password = EXCLUDED.password, profile_name = EXCLUDED.profile_name,
                   mikrotik_comment = EXCLUDED.mikrotik_comment, batch_id = EXCLUDED.batch_id,
                   valid_hours = EXCLUDED.valid_hours, status = 'created',
                   sell = EXCLUDED.sell, cost = EXCLUDED.cost,
                   first_login_at = NULL, expires_at = NULL,
                   intent_at = EXCLUDED.intent_at, updated_at = now()
             WHERE v.intent_at IS NULL OR v.intent_at <= EXCLUDED.intent_at;
        END IF;

    ELSIF v_type = 'user_created' THEN
        -- Created by the sync from the desired state: only fills in a
        -- password central did not have.
        IF v_service = 'pppoe' THEN
            UPDATE subscriptions SET password = coalesce(password, e ->> 'password')
             WHERE site_id = p_site AND pppoe_username = v_user;
        ELSE
            UPDATE vouchers SET password = coalesce(password, e ->> 'password')
             WHERE site_id = p_site AND code = v_user;
        END IF;

    ELSIF v_type = 'user_changed' THEN
        -- A delete, disable or enable made at the site: an operator intent.
        IF v_user IS NULL THEN RETURN; END IF;
        IF v_service = 'pppoe' THEN
            UPDATE subscriptions SET status = CASE e ->> 'action'
                       WHEN 'deleted' THEN 'deleted' WHEN 'disabled' THEN 'suspended'
                       WHEN 'enabled' THEN 'active' ELSE status END,
                   intent_at = p_at, updated_at = now()
             WHERE site_id = p_site AND pppoe_username = v_user
               AND (e ->> 'action') IN ('deleted', 'disabled', 'enabled')
               AND (intent_at IS NULL OR intent_at <= p_at);
        ELSIF (e ->> 'action') = 'deleted' THEN
            UPDATE vouchers SET status = 'deleted', intent_at = p_at, updated_at = now()
             WHERE site_id = p_site AND code = v_user
               AND (intent_at IS NULL OR intent_at <= p_at);
        END IF;

    ELSIF v_type = 'voucher_expired' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        INSERT INTO vouchers AS v (site_id, code, batch_id, status, expires_at)
        VALUES (p_site, v_user, _edge_nz(e ->> 'batch_id'), 'expired', _edge_ts(e ->> 'expires_at'))
        ON CONFLICT (site_id, code) DO UPDATE
           SET status = 'expired',
               batch_id = coalesce(v.batch_id, EXCLUDED.batch_id),
               expires_at = coalesce(EXCLUDED.expires_at, v.expires_at),
               updated_at = now();

    ELSIF v_type = 'voucher_invalid' THEN
        INSERT INTO alerts (site_id, name, message, data, at)
        VALUES (p_site, 'voucher_invalid',
                format('voucher %s: %s', coalesce(v_user, '?'), coalesce(e ->> 'reason', '')), e, p_at);

    ELSIF v_type = 'manual_user' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        INSERT INTO manual_users AS m (site_id, service, username, profile, comment, data, first_seen, last_seen)
        VALUES (p_site, v_service, v_user, e ->> 'profile', e ->> 'comment', e, p_at, p_at)
        ON CONFLICT (site_id, service, username) DO UPDATE
           SET profile = EXCLUDED.profile, comment = EXCLUDED.comment, data = EXCLUDED.data,
               first_seen = least(m.first_seen, EXCLUDED.first_seen),
               last_seen = greatest(m.last_seen, EXCLUDED.last_seen);

    ELSIF v_type = 'user_adopted' THEN
        IF v_user IS NULL THEN RETURN; END IF;
        IF v_service = 'pppoe' THEN
            -- A PPPOE_SYSTEM secret the central side did not know: taken
            -- over as an active subscription (no password: the router keeps it).
            INSERT INTO subscriptions AS s (site_id, pppoe_username, password, profile_name, status,
                                            comment)
            VALUES (p_site, v_user, e ->> 'password', e ->> 'profile',
                    CASE WHEN (e ->> 'disabled') = 'true' THEN 'suspended' ELSE 'active' END,
                    e ->> 'comment')
            ON CONFLICT (site_id, pppoe_username) DO UPDATE
               SET password = coalesce(s.password, EXCLUDED.password),
                   profile_name = coalesce(s.profile_name, EXCLUDED.profile_name),
                   comment = coalesce(s.comment, EXCLUDED.comment);
        ELSE
            INSERT INTO vouchers AS v (site_id, code, password, profile_name, mikrotik_comment,
                                       batch_id, valid_hours, status, first_login_at, expires_at,
                                       sell, cost)
            VALUES (p_site, v_user, e ->> 'password', e ->> 'profile', e ->> 'comment',
                    _edge_nz(e ->> 'batch_id'), _edge_num(e -> 'valid_hours'), 'migrated',
                    _edge_ts(e ->> 'first_login_at'), _edge_ts(e ->> 'expires_at'),
                    _edge_price(e ->> 'comment', 3), _edge_price(e ->> 'comment', 4))
            ON CONFLICT (site_id, code) DO UPDATE
               SET sell = coalesce(v.sell, EXCLUDED.sell), cost = coalesce(v.cost, EXCLUDED.cost),
                   password = coalesce(v.password, EXCLUDED.password),
                   profile_name = coalesce(v.profile_name, EXCLUDED.profile_name),
                   mikrotik_comment = coalesce(v.mikrotik_comment, EXCLUDED.mikrotik_comment);
        END IF;

    ELSIF v_type = 'create_failed' THEN
        -- The router refused a desired user (duplicate name, unknown profile).
        INSERT INTO alerts (site_id, name, message, data, at)
        VALUES (p_site, 'create_failed',
                format('%s %s not created: %s', v_service, coalesce(v_user, '?'),
                       coalesce(e ->> 'reason', '')),
                e, p_at);

    ELSIF v_type = 'profile' THEN
        IF e ->> 'name' IS NULL THEN RETURN; END IF;
        INSERT INTO mikrotik_profiles AS p (site_id, name, service, rate_limit, session_timeout,
                                            shared_users, data, synced_at)
        VALUES (p_site, e ->> 'name', CASE WHEN v_service = 'pppoe' THEN 'pppoe' ELSE 'hotspot' END,
                e ->> 'rate_limit', e ->> 'session_timeout', e ->> 'shared_users', e, p_at)
        ON CONFLICT (site_id, service, name) DO UPDATE
           SET rate_limit = EXCLUDED.rate_limit, session_timeout = EXCLUDED.session_timeout,
               shared_users = EXCLUDED.shared_users, data = EXCLUDED.data,
               synced_at = EXCLUDED.synced_at, updated_at = now()
         WHERE p.synced_at <= EXCLUDED.synced_at;

    ELSIF v_type = 'router' THEN
        INSERT INTO mikrotik_connection_log (site_id, event, message, details, created_at)
        VALUES (p_site,
                CASE e ->> 'state' WHEN 'connected' THEN 'connect'
                                   WHEN 'disconnected' THEN 'disconnect'
                                   WHEN 'error' THEN 'error'
                                   ELSE coalesce(e ->> 'state', 'unknown') END,
                e ->> 'reason', e, p_at);

    ELSIF v_type = 'alert' THEN
        INSERT INTO alerts (site_id, name, message, data, at)
        VALUES (p_site, coalesce(_edge_nz(e ->> 'name'), 'alert'), e ->> 'message', e, p_at);

    ELSIF v_type = 'dropped' THEN
        INSERT INTO alerts (site_id, name, message, data, at)
        VALUES (p_site, 'events_dropped',
                format('agent outbox full: dropped %s events (seq %s to %s)',
                       coalesce(e ->> 'count', '?'), coalesce(e ->> 'from_seq', '?'),
                       coalesce(e ->> 'to_seq', '?')),
                e, p_at);

    ELSIF v_type = 'event_quarantined' THEN
        INSERT INTO alerts (site_id, name, message, data, at)
        VALUES (p_site, 'event_quarantined',
                format('agent quarantined %s events the central side refused (seq %s): %s',
                       coalesce(e ->> 'count', '?'), coalesce(e -> 'seqs', '[]'::jsonb)::text,
                       coalesce(e ->> 'reason', '')),
                e, p_at);
    END IF;
    -- clock, subscription and unknown types: agent_events only (the
    -- desired state already says what they confirm).
END
$$;

-- ---------------------------------------------------------------- ingest_batch

-- json as jsonb, with what jsonb cannot hold (the escape \u0000, then lone
-- UTF-16 surrogate escapes) replaced by U+FFFD; NULL when even that fails.
-- An escape is one preceded by an even number of backslashes.
CREATE OR REPLACE FUNCTION _edge_jsonb(p json) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_text text := p::text;
BEGIN
    IF p IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        RETURN p::jsonb;
    EXCEPTION WHEN data_exception THEN
        NULL;
    END;
    v_text := regexp_replace(v_text, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g');
    BEGIN
        RETURN v_text::jsonb;
    EXCEPTION WHEN data_exception THEN
        NULL;
    END;
    v_text := regexp_replace(v_text, '(?<!\\)((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}',
                             '\1\\ufffd', 'g');
    BEGIN
        RETURN v_text::jsonb;
    EXCEPTION WHEN data_exception THEN
        RETURN NULL;
    END;
END
$$;

-- The batch comes as json, not jsonb: converting to jsonb refuses U+0000,
-- and a jsonb argument failed the whole call before this function could
-- help. (PostgREST still fails such a body itself: its json_to_record
-- de-escapes every string. The gateway makes U+0000 storable first, and
-- the agent never sends it.)
DROP FUNCTION IF EXISTS ingest_batch(text, jsonb);

-- One new event, parsed once per batch for the set-based statements below.
-- (Dropped and made again on every load, so that a changed field list
-- takes effect: only the functions below use it, none stores it.)
DROP TYPE IF EXISTS _edge_ev CASCADE;
DO $$ BEGIN
    CREATE TYPE _edge_ev AS (
        seq bigint, at timestamptz, type text, service text, usr text, active text, sess text,
        addr inet, mac text, bin bigint, bout bigint, upt bigint, fast boolean, ev jsonb);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- vouchers.last_seen, ip_address and mac_address from a batch's set-based
-- hotspot session events: p_before, those before the batch's first event
-- about the voucher; else the rest (the session keys in between go one by
-- one, see _edge_apply_set). Newest wins, as one by one.
CREATE OR REPLACE FUNCTION _edge_voucher_seen(p_site text, p_rows _edge_ev[], p_before boolean)
RETURNS void
-- plpgsql, not sql: its plan is cached per connection.
LANGUAGE plpgsql AS $$
BEGIN
    WITH vc AS (
        SELECT x.usr, min(x.seq) AS first_seq FROM unnest(p_rows) AS x
         WHERE x.type IN ('voucher_activated', 'voucher_expired', 'voucher_corrected',
                          'user_created', 'user_changed', 'user_adopted') AND x.usr IS NOT NULL
         GROUP BY x.usr
    ), h AS (
        SELECT x.usr, max(x.at) AS at,
               (array_agg(x.addr ORDER BY x.seq DESC)
                   FILTER (WHERE x.type = 'login' AND x.addr IS NOT NULL))[1] AS addr,
               (array_agg(x.mac ORDER BY x.seq DESC)
                   FILTER (WHERE x.type = 'login' AND x.mac IS NOT NULL))[1] AS mac
          FROM unnest(p_rows) AS x LEFT JOIN vc ON vc.usr = x.usr
         WHERE x.fast AND x.type IN ('login', 'logout', 'usage') AND x.usr IS NOT NULL
           AND x.service = 'hotspot'
           AND (CASE WHEN p_before THEN x.seq < vc.first_seq
                     ELSE vc.first_seq IS NULL OR x.seq > vc.first_seq END)
         GROUP BY x.usr
    )
    UPDATE vouchers AS v SET last_seen = greatest(coalesce(v.last_seen, h.at), h.at),
           ip_address = coalesce(h.addr, v.ip_address), mac_address = coalesce(h.mac, v.mac_address)
      FROM h WHERE v.site_id = p_site AND v.code = h.usr;
END
$$;

-- Applies a batch's new events (ascending seq, already stored) to the
-- design tables: one statement per event type over the whole batch, with
-- the same results as _edge_apply once per event in seq order. Events
-- whose order within the batch matters beyond what one statement can
-- express go through _edge_apply one by one first, in seq order:
--   * a session key (service, user, active_id) with more than one login or
--     logout in the batch, or events out of the login < usage < logout
--     order; every session event of a user with a seen_at_start login;
--   * a voucher code touched by more than one voucher event in the batch;
--   * the rare state changes (user_created/changed/adopted, voucher_expired,
--     voucher_corrected, manual_user, profile).
-- Everything else (the steady mix: logins, usage, logouts, activations,
-- router states, alerts) is applied set-based afterwards; what the two
-- parts both touch (user_usage_stats, vouchers.last_seen) is written with
-- "newest wins" rules that do not depend on the order.
CREATE OR REPLACE FUNCTION _edge_apply_set(p_site text, p_new jsonb) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_rows _edge_ev[];
    v_gap  bigint[];
    r      _edge_ev;
BEGIN
    WITH e AS (
        SELECT (ev ->> 'seq')::bigint AS seq, (ev ->> 'at')::timestamptz AS at, ev ->> 'type' AS typ,
               coalesce(_edge_nz(ev ->> 'service'), 'hotspot') AS service, ev ->> 'user' AS usr,
               coalesce(ev ->> 'active_id', '') AS active, coalesce(ev ->> 'session_id', '') AS sess,
               ev
          FROM jsonb_array_elements(p_new) AS ev
    ), k AS (
        SELECT service, usr, active,
               count(*) FILTER (WHERE typ = 'login') AS n_login,
               count(*) FILTER (WHERE typ = 'logout') AS n_logout,
               max(seq) FILTER (WHERE typ = 'login') AS login_seq,
               min(seq) FILTER (WHERE typ IN ('usage', 'logout')) AS after_login,
               max(seq) FILTER (WHERE typ = 'usage') AS last_usage,
               min(seq) FILTER (WHERE typ = 'logout') AS logout_seq
          FROM e WHERE typ IN ('login', 'logout', 'usage') AND usr IS NOT NULL
         GROUP BY 1, 2, 3
    ), su AS (
        -- A seen_at_start login merges with any open session of the user,
        -- whatever its active id: all that user's session events in order.
        SELECT DISTINCT service, usr FROM e
         WHERE typ = 'login' AND (ev ->> 'seen_at_start') = 'true' AND usr IS NOT NULL
    ), vc AS (
        SELECT usr, count(*) AS n, min(seq) AS first_seq, max(seq) AS last_seq FROM e
         WHERE typ IN ('voucher_activated', 'voucher_expired', 'voucher_corrected',
                       'user_created', 'user_changed', 'user_adopted') AND usr IS NOT NULL
         GROUP BY usr
    ), kv AS (
        -- Hotspot session keys with an event between two voucher events
        -- of the same code: the voucher row changes around it.
        SELECT DISTINCT e.service, e.usr, e.active FROM e JOIN vc ON vc.usr = e.usr
         WHERE e.typ IN ('login', 'logout', 'usage') AND e.service = 'hotspot'
           AND e.seq > vc.first_seq AND e.seq < vc.last_seq
    ), c AS (
        -- Session events: set-based when their key's events are in order.
        SELECT e.*, vc.n AS n_voucher,
               CASE WHEN e.usr IS NOT NULL AND e.typ IN ('login', 'logout', 'usage') THEN
                   k.n_login <= 1 AND k.n_logout <= 1 AND su.usr IS NULL AND kv.usr IS NULL
               END AS session_fast
          FROM e
          LEFT JOIN k ON k.service = e.service AND k.usr = e.usr AND k.active = e.active
          LEFT JOIN su ON su.service = e.service AND su.usr = e.usr
          LEFT JOIN kv ON kv.service = e.service AND kv.usr = e.usr AND kv.active = e.active
          LEFT JOIN vc ON vc.usr = e.usr
    ), slow_users AS (
        -- A voucher whose user has session events going one by one: its
        -- voucher events go one by one too, in order with them.
        SELECT DISTINCT usr FROM c WHERE service = 'hotspot' AND NOT session_fast
    )
    SELECT array_agg(ROW(
               c.seq, c.at, c.typ, c.service, c.usr, c.active, c.sess,
               CASE WHEN c.typ IN ('login', 'logout') THEN _edge_inet(c.ev ->> 'address') END,
               coalesce(_edge_nz(c.ev ->> 'mac'), _edge_nz(c.ev ->> 'caller_id')),
               _edge_int(c.ev -> 'bytes_in'), _edge_int(c.ev -> 'bytes_out'),
               _edge_int(c.ev -> 'uptime_secs'),
               CASE
                   WHEN c.typ IN ('voucher_expired', 'voucher_corrected', 'user_created',
                                  'user_changed', 'user_adopted', 'manual_user', 'profile') THEN false
                   WHEN c.usr IS NULL THEN true
                   WHEN c.typ IN ('login', 'logout', 'usage') THEN c.session_fast
                   WHEN c.typ = 'voucher_activated' THEN c.n_voucher = 1 AND su2.usr IS NULL
                   ELSE true
               END,
               c.ev)::_edge_ev ORDER BY c.seq)
      INTO v_rows
      FROM c LEFT JOIN slow_users AS su2 ON su2.usr = c.usr;
    IF v_rows IS NULL THEN
        RETURN;
    END IF;

    -- A hotspot user that is a voucher: last seen, address and MAC, from
    -- the set-based session events before the batch's first event about
    -- that voucher (they saw the row as it was before the batch) ...
    PERFORM _edge_voucher_seen(p_site, v_rows, true);

    -- The order-sensitive rest, one by one.
    FOR r IN SELECT * FROM unnest(v_rows) AS x WHERE NOT x.fast ORDER BY x.seq LOOP
        PERFORM _edge_apply(p_site, r.seq, r.at, r.ev);
    END LOOP;

    -- voucher_activated (one per code in this batch).
    INSERT INTO vouchers AS v (site_id, code, batch_id, valid_hours, status, first_login_at,
                               expires_at, mac_address, last_seen, mikrotik_comment, sell, cost)
    SELECT p_site, x.usr, _edge_nz(x.ev ->> 'batch_id'), _edge_num(x.ev -> 'valid_hours'), 'active',
           _edge_ts(x.ev ->> 'first_login_at'), _edge_ts(x.ev ->> 'expires_at'),
           _edge_nz(x.ev ->> 'mac'), x.at, _edge_nz(x.ev ->> 'comment'),
           _edge_price(x.ev ->> 'comment', 3), _edge_price(x.ev ->> 'comment', 4)
      FROM unnest(v_rows) AS x
     WHERE x.fast AND x.type = 'voucher_activated' AND x.usr IS NOT NULL
     ORDER BY x.seq
    ON CONFLICT (site_id, code) DO UPDATE
       SET status = CASE
               WHEN v.status = 'expired' AND v.expires_at IS NOT DISTINCT FROM EXCLUDED.expires_at
               THEN 'expired' ELSE 'active' END,
           batch_id = coalesce(EXCLUDED.batch_id, v.batch_id),
           valid_hours = coalesce(EXCLUDED.valid_hours, v.valid_hours),
           first_login_at = coalesce(EXCLUDED.first_login_at, v.first_login_at),
           expires_at = coalesce(EXCLUDED.expires_at, v.expires_at),
           mac_address = coalesce(EXCLUDED.mac_address, v.mac_address),
           last_seen = greatest(coalesce(v.last_seen, EXCLUDED.last_seen), EXCLUDED.last_seen),
           mikrotik_comment = coalesce(EXCLUDED.mikrotik_comment, v.mikrotik_comment),
           -- The price set at creation stays; else the comment's (as _edge_apply).
           sell = coalesce(v.sell, EXCLUDED.sell),
           cost = coalesce(v.cost, EXCLUDED.cost),
           updated_at = now();

    -- Logins (at most one per key, none seen_at_start): first the logouts
    -- that arrived before their login (a gap filled later) ...
    WITH l AS (
        SELECT x.* FROM unnest(v_rows) AS x
         WHERE x.fast AND x.type = 'login' AND x.usr IS NOT NULL
    ), t AS (
        SELECT l.seq, l.at, l.addr, l.mac, s.id
          FROM l CROSS JOIN LATERAL (
              SELECT id FROM sessions
               WHERE site_id = p_site AND service = l.service AND username = l.usr
                 AND active_id = l.active AND session_id = l.sess
                 AND login_seq IS NULL AND logout_seq > l.seq
               ORDER BY logout_seq LIMIT 1) AS s
    ), g AS (
        UPDATE sessions AS s SET started_at = t.at, login_seq = t.seq, address = t.addr,
               mac_address = t.mac, updated_at = now()
          FROM t WHERE s.site_id = p_site AND s.id = t.id
        RETURNING t.seq
    )
    SELECT coalesce(array_agg(g.seq), '{}') INTO v_gap FROM g;
    -- ... then a stale open row with the same key never got its logout ...
    UPDATE sessions AS s SET ended_at = x.at, end_reason = 'replaced', updated_at = now()
      FROM unnest(v_rows) AS x
     WHERE x.fast AND x.type = 'login' AND x.usr IS NOT NULL AND x.seq <> ALL (v_gap)
       AND s.site_id = p_site AND s.service = x.service AND s.username = x.usr
       AND s.active_id = x.active AND s.ended_at IS NULL;
    -- ... and the new sessions.
    INSERT INTO sessions (site_id, service, username, active_id, session_id, address,
                          mac_address, started_at, seen_at_start, login_seq, last_seq)
    SELECT p_site, x.service, x.usr, x.active, x.sess, x.addr, x.mac, x.at, false, x.seq, x.seq
      FROM unnest(v_rows) AS x
     WHERE x.fast AND x.type = 'login' AND x.usr IS NOT NULL AND x.seq <> ALL (v_gap)
     ORDER BY x.seq;

    -- Usage: the newest counters per key (after the key's login, if any).
    WITH u AS (
        SELECT x.service, x.usr, x.active, max(x.seq) AS seq,
               (array_agg(x.bin ORDER BY x.seq DESC) FILTER (WHERE x.bin IS NOT NULL))[1] AS bin,
               (array_agg(x.bout ORDER BY x.seq DESC) FILTER (WHERE x.bout IS NOT NULL))[1] AS bout,
               (array_agg(x.upt ORDER BY x.seq DESC) FILTER (WHERE x.upt IS NOT NULL))[1] AS upt
          FROM unnest(v_rows) AS x
         WHERE x.fast AND x.type = 'usage' AND x.usr IS NOT NULL
         GROUP BY 1, 2, 3
    )
    UPDATE sessions AS s SET bytes_in = coalesce(u.bin, s.bytes_in),
           bytes_out = coalesce(u.bout, s.bytes_out), uptime_secs = coalesce(u.upt, s.uptime_secs),
           last_seq = u.seq, updated_at = now()
      FROM u
     WHERE s.site_id = p_site AND s.service = u.service AND s.username = u.usr
       AND s.active_id = u.active AND s.ended_at IS NULL AND s.last_seq < u.seq;

    -- Logouts (at most one per key): close the key's open row (ingest
    -- keeps at most one: a login closes a stale one first), else store a
    -- closed session. One join, no per-logout lookup.
    WITH o AS (
        SELECT x.* FROM unnest(v_rows) AS x
         WHERE x.fast AND x.type = 'logout' AND x.usr IS NOT NULL
    ), c AS (
        UPDATE sessions AS s SET ended_at = o.at, end_reason = o.ev ->> 'reason',
               bytes_in = coalesce(o.bin, s.bytes_in), bytes_out = coalesce(o.bout, s.bytes_out),
               uptime_secs = coalesce(o.upt, s.uptime_secs),
               session_id = CASE WHEN s.session_id = '' THEN o.sess ELSE s.session_id END,
               logout_seq = o.seq, last_seq = greatest(s.last_seq, o.seq), updated_at = now()
          FROM o
         WHERE s.site_id = p_site AND s.service = o.service AND s.username = o.usr
           AND s.active_id = o.active AND s.ended_at IS NULL
        RETURNING o.seq
    )
    INSERT INTO sessions (site_id, service, username, active_id, session_id, started_at,
                          ended_at, bytes_in, bytes_out, uptime_secs, end_reason,
                          logout_seq, last_seq)
    SELECT p_site, o.service, o.usr, o.active, o.sess,
           o.at - make_interval(secs => coalesce(o.upt, 0)), o.at,
           o.bin, o.bout, o.upt, o.ev ->> 'reason', o.seq, o.seq
      FROM o WHERE o.seq NOT IN (SELECT c.seq FROM c)
     ORDER BY o.seq;

    -- The activity log: every login and logout of the set-based part.
    INSERT INTO user_activity_log (site_id, username, type, action, ip_address, mac_address, seq, created_at)
    SELECT p_site, x.usr, x.service, x.type, x.addr, x.mac, x.seq, x.at
      FROM unnest(v_rows) AS x
     WHERE x.fast AND x.type IN ('login', 'logout') AND x.usr IS NOT NULL
     ORDER BY x.seq;

    -- Latest totals per username: the newest usage or logout wins, as one
    -- by one (WHERE last_updated <= the event's time).
    INSERT INTO user_usage_stats AS u (site_id, username, type, session_start, session_end,
                                       bytes_in, bytes_out, uptime_seconds, last_updated)
    SELECT DISTINCT ON (x.usr) p_site, x.usr, x.service,
           x.at - make_interval(secs => coalesce(x.upt, 0)),
           CASE WHEN x.type = 'logout' THEN x.at END,
           x.bin, x.bout, coalesce(x.upt, 0), x.at
      FROM unnest(v_rows) AS x
     WHERE x.fast AND x.type IN ('usage', 'logout') AND x.usr IS NOT NULL
     ORDER BY x.usr, x.at DESC, x.seq DESC
    ON CONFLICT (site_id, username) DO UPDATE
       SET type = EXCLUDED.type, session_start = EXCLUDED.session_start,
           session_end = EXCLUDED.session_end, bytes_in = EXCLUDED.bytes_in,
           bytes_out = EXCLUDED.bytes_out, uptime_seconds = EXCLUDED.uptime_seconds,
           last_updated = EXCLUDED.last_updated
     WHERE u.last_updated <= EXCLUDED.last_updated;

    -- ... and from the others, after every voucher event.
    PERFORM _edge_voucher_seen(p_site, v_rows, false);

    INSERT INTO mikrotik_connection_log (site_id, event, message, details, created_at)
    SELECT p_site,
           CASE x.ev ->> 'state' WHEN 'connected' THEN 'connect'
                                 WHEN 'disconnected' THEN 'disconnect'
                                 WHEN 'error' THEN 'error'
                                 ELSE coalesce(x.ev ->> 'state', 'unknown') END,
           x.ev ->> 'reason', x.ev, x.at
      FROM unnest(v_rows) AS x WHERE x.fast AND x.type = 'router'
     ORDER BY x.seq;

    INSERT INTO alerts (site_id, name, message, data, at)
    SELECT p_site,
           CASE x.type
               WHEN 'alert' THEN coalesce(_edge_nz(x.ev ->> 'name'), 'alert')
               WHEN 'dropped' THEN 'events_dropped'
               ELSE x.type END,
           CASE x.type
               WHEN 'recreate_blocked' THEN
                   format('%s %s missing on the router and not recreated: %s', x.service,
                          coalesce(x.usr, '?'), coalesce(x.ev ->> 'reason', ''))
               WHEN 'voucher_invalid' THEN
                   format('voucher %s: %s', coalesce(x.usr, '?'), coalesce(x.ev ->> 'reason', ''))
               WHEN 'create_failed' THEN
                   format('%s %s not created: %s', x.service, coalesce(x.usr, '?'),
                          coalesce(x.ev ->> 'reason', ''))
               WHEN 'alert' THEN x.ev ->> 'message'
               WHEN 'dropped' THEN
                   format('agent outbox full: dropped %s events (seq %s to %s)',
                          coalesce(x.ev ->> 'count', '?'), coalesce(x.ev ->> 'from_seq', '?'),
                          coalesce(x.ev ->> 'to_seq', '?'))
               ELSE
                   format('agent quarantined %s events the central side refused (seq %s): %s',
                          coalesce(x.ev ->> 'count', '?'), coalesce(x.ev -> 'seqs', '[]'::jsonb)::text,
                          coalesce(x.ev ->> 'reason', ''))
           END,
           x.ev, x.at
      FROM unnest(v_rows) AS x
     WHERE x.fast AND x.type IN ('recreate_blocked', 'voucher_invalid', 'create_failed', 'alert',
                                 'dropped', 'event_quarantined')
     ORDER BY x.seq;
END
$$;

-- What agent_events.body keeps of an event: the envelope is in the columns.
CREATE OR REPLACE FUNCTION _edge_body(e jsonb, p_site text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN e ->> 'site' = p_site THEN e - 'site' ELSE e END
           - 'stream' - 'seq' - 'prev' - 'type' - 'at'
$$;

CREATE OR REPLACE FUNCTION ingest_batch(site_id text, batch json) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_site    text := $1;
    v_raw     json := $2;
    v_batch   jsonb;
    v_stream  text;
    v_events  jsonb;
    v_new     jsonb;
    v_have    bigint[];
    v_max     bigint;
    v_through bigint;
    v_state   text;
    v_msg     text;
    v_md5     text;
    v_bad     text;
    r         record;
BEGIN
    PERFORM _edge_check_site(v_site);
    -- Row changes from here on are the agent's facts, not an operator's
    -- intents made now (see _edge_intent_stamp).
    PERFORM set_config('edge.applying', 'on', true);

    IF v_raw IS NULL OR json_typeof(v_raw) <> 'object' THEN
        RAISE EXCEPTION 'batch must be a JSON object' USING ERRCODE = '22023';
    END IF;
    -- Without a \u escape the cast cannot fail: no subtransaction.
    IF strpos(v_raw::text, '\u') = 0 THEN
        v_batch := v_raw::jsonb;
    ELSE
        BEGIN
            v_batch := v_raw::jsonb;
        EXCEPTION WHEN data_exception THEN
            -- U+0000 (or a lone surrogate escape) somewhere. Every json
            -- function fails on it too, so the text is made storable as a
            -- whole; each event it changed is flagged `_lossy` with the md5
            -- of the exact text, kept once per site in an `alerts` row
            -- `lossy_batch` (`data.raw`, below): nothing is lost.
            v_batch := _edge_jsonb(v_raw);
            v_md5 := md5(v_raw::text);
            IF v_batch IS NULL THEN
                RAISE EXCEPTION 'batch is not JSON PostgreSQL can store' USING ERRCODE = '22023';
            END IF;
        END;
    END IF;
    IF jsonb_typeof(v_batch -> 'stream') IS DISTINCT FROM 'string' OR v_batch ->> 'stream' = '' THEN
        RAISE EXCEPTION 'batch.stream is required (a non-empty string)' USING ERRCODE = '22023';
    END IF;
    v_stream := v_batch ->> 'stream';
    IF length(v_stream) > 128 THEN
        RAISE EXCEPTION 'batch.stream is too long' USING ERRCODE = '22023';
    END IF;
    v_events := v_batch -> 'events';
    IF jsonb_typeof(v_events) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'batch.events must be an array' USING ERRCODE = '22023';
    END IF;
    IF v_md5 IS NOT NULL THEN
        SELECT jsonb_agg(CASE WHEN strpos(t.value::text, chr(65533)) > 0
                              THEN t.value || jsonb_build_object('_lossy', v_md5)
                              ELSE t.value END ORDER BY t.n)
          INTO v_events
          FROM jsonb_array_elements(v_events) WITH ORDINALITY AS t(value, n);
    END IF;

    -- Validate everything before writing anything: one pass for the
    -- shape, then every `at` cast at once (one subtransaction per batch;
    -- the per-event check only runs to name a bad one).
    SELECT CASE
               WHEN jsonb_typeof(e) IS DISTINCT FROM 'object' THEN
                   format('batch.events[%s] must be an object', n - 1)
               WHEN jsonb_typeof(e -> 'seq') IS DISTINCT FROM 'number' OR (e ->> 'seq') !~ '^[0-9]{1,18}$'
                    OR (e ->> 'seq')::bigint < 1 THEN
                   format('batch.events[%s].seq must be an integer >= 1, got %s', n - 1,
                          coalesce(e ->> 'seq', 'nothing'))
               WHEN jsonb_typeof(e -> 'prev') IS DISTINCT FROM 'number' OR (e ->> 'prev') !~ '^[0-9]{1,18}$'
                    OR (e ->> 'prev')::bigint >= (e ->> 'seq')::bigint THEN
                   format('batch.events[%s].prev must be an integer below seq, got %s', n - 1,
                          coalesce(e ->> 'prev', 'nothing'))
               WHEN e ? 'stream' AND (e ->> 'stream') IS DISTINCT FROM v_stream THEN
                   format('batch.events[%s].stream differs from batch.stream', n - 1)
               WHEN jsonb_typeof(e -> 'type') IS DISTINCT FROM 'string' THEN
                   format('batch.events[%s].type must be a string', n - 1)
               WHEN jsonb_typeof(e -> 'at') IS DISTINCT FROM 'string'
                    OR (e ->> 'at') !~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}' THEN
                   format('batch.events[%s].at must be an RFC 3339 time, got %s', n - 1,
                          coalesce(e ->> 'at', 'nothing'))
           END
      INTO v_bad
      FROM jsonb_array_elements(v_events) WITH ORDINALITY AS t(e, n)
     WHERE jsonb_typeof(e) IS DISTINCT FROM 'object'
        OR jsonb_typeof(e -> 'seq') IS DISTINCT FROM 'number' OR (e ->> 'seq') !~ '^[0-9]{1,18}$'
        OR (e ->> 'seq')::bigint < 1
        OR jsonb_typeof(e -> 'prev') IS DISTINCT FROM 'number' OR (e ->> 'prev') !~ '^[0-9]{1,18}$'
        OR (e ->> 'prev')::bigint >= (e ->> 'seq')::bigint
        OR (e ? 'stream' AND (e ->> 'stream') IS DISTINCT FROM v_stream)
        OR jsonb_typeof(e -> 'type') IS DISTINCT FROM 'string'
        OR jsonb_typeof(e -> 'at') IS DISTINCT FROM 'string'
        OR (e ->> 'at') !~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}'
     ORDER BY n LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION '%', v_bad USING ERRCODE = '22023';
    END IF;
    BEGIN
        PERFORM max((e ->> 'at')::timestamptz) FROM jsonb_array_elements(v_events) AS e;
    EXCEPTION WHEN data_exception THEN
        SELECT format('batch.events[%s].at must be an RFC 3339 time, got %s', n - 1, e ->> 'at')
          INTO v_bad
          FROM jsonb_array_elements(v_events) WITH ORDINALITY AS t(e, n)
         WHERE _edge_ts(e ->> 'at') IS NULL ORDER BY n LIMIT 1;
        RAISE EXCEPTION '%', coalesce(v_bad, 'batch.events: an `at` is not a time')
            USING ERRCODE = '22023';
    END;

    INSERT INTO sites AS s (site_id, last_upload_at) VALUES (v_site, now())
    ON CONFLICT (site_id) DO UPDATE SET last_upload_at = now();

    INSERT INTO agent_streams (site_id, stream) VALUES (v_site, v_stream)
    ON CONFLICT DO NOTHING;
    -- Serialises concurrent uploads of the same stream: from here on, what
    -- is stored for this stream cannot change under us.
    SELECT stored_through INTO v_through FROM agent_streams
     WHERE site_id = v_site AND stream = v_stream FOR UPDATE;

    -- The new events: above stored_through, not stored yet (one range scan
    -- for those stored beyond a gap), each seq once.
    SELECT max((e ->> 'seq')::bigint) INTO v_max FROM jsonb_array_elements(v_events) AS e;
    SELECT coalesce(array_agg(a.seq), '{}') INTO v_have FROM agent_events AS a
     WHERE a.site_id = v_site AND a.stream = v_stream AND a.seq > v_through AND a.seq <= v_max;
    SELECT coalesce(jsonb_agg(d.e ORDER BY d.seq), '[]'::jsonb) INTO v_new
      FROM (SELECT DISTINCT ON ((e ->> 'seq')::bigint) (e ->> 'seq')::bigint AS seq, e
              FROM jsonb_array_elements(v_events) AS e
             ORDER BY (e ->> 'seq')::bigint) AS d
     WHERE d.seq > v_through AND d.seq <> ALL (v_have);

    -- All new events stored and applied in one go (one subtransaction per
    -- batch); when one fails, again one by one, so that an event that
    -- cannot be applied is stored, flagged (`_apply_error`, an
    -- `event_not_applied` alert) and the rest applied. Transient errors
    -- (serialization, resources, shutdown) still fail the call (503).
    IF jsonb_array_length(v_new) > 0 THEN
        BEGIN
            INSERT INTO agent_events (site_id, stream, seq, prev, type, at, body)
            SELECT v_site, v_stream, (e ->> 'seq')::bigint, (e ->> 'prev')::bigint, e ->> 'type',
                   (e ->> 'at')::timestamptz, _edge_body(e, v_site)
              FROM jsonb_array_elements(v_new) AS e;
            PERFORM _edge_apply_set(v_site, v_new);
        EXCEPTION
            WHEN transaction_rollback OR insufficient_resources OR operator_intervention THEN
                RAISE;
            WHEN others THEN
                FOR r IN SELECT (e ->> 'seq')::bigint AS seq, (e ->> 'prev')::bigint AS prev, e AS ev
                           FROM jsonb_array_elements(v_new) AS e
                          ORDER BY (e ->> 'seq')::bigint LOOP
                    INSERT INTO agent_events (site_id, stream, seq, prev, type, at, body)
                    VALUES (v_site, v_stream, r.seq, r.prev, r.ev ->> 'type', _edge_ts(r.ev ->> 'at'),
                            _edge_body(r.ev, v_site));
                    BEGIN
                        PERFORM _edge_apply(v_site, r.seq, _edge_ts(r.ev ->> 'at'), r.ev);
                    EXCEPTION
                        WHEN transaction_rollback OR insufficient_resources OR operator_intervention THEN
                            RAISE;
                        WHEN others THEN
                            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
                            UPDATE agent_events
                               SET body = body || jsonb_build_object('_apply_error', v_state || ': ' || v_msg)
                             WHERE site_id = v_site AND stream = v_stream AND seq = r.seq;
                            INSERT INTO alerts (site_id, name, message, data, at)
                            VALUES (v_site, 'event_not_applied',
                                    format('event %s (%s) stored but not applied: %s: %s',
                                           r.seq, r.ev ->> 'type', v_state, v_msg),
                                    r.ev, coalesce(_edge_ts(r.ev ->> 'at'), now()));
                    END;
                END LOOP;
        END;
    END IF;

    IF v_md5 IS NOT NULL THEN
        INSERT INTO alerts (site_id, name, message, data, at)
        SELECT v_site, 'lossy_batch',
               'a batch held text PostgreSQL cannot store (U+0000): stored with U+FFFD, '
               || 'its exact text is data.raw; events flagged _lossy = data.md5',
               jsonb_build_object('md5', v_md5, 'raw', v_raw::text), now()
         WHERE NOT EXISTS (SELECT 1 FROM alerts
                            WHERE site_id = v_site AND name = 'lossy_batch'
                              AND data ->> 'md5' = v_md5);
    END IF;

    -- Follow the prev chain from stored_through over the rows above it, in
    -- ascending seq: the first row whose prev is the chain's end extends it
    -- (prev < seq, so one pass finds the same chain as following it).
    FOR r IN SELECT a.seq, a.prev FROM agent_events AS a
              WHERE a.site_id = v_site AND a.stream = v_stream AND a.seq > v_through
              ORDER BY a.seq LOOP
        IF r.prev = v_through THEN
            v_through := r.seq;
        END IF;
    END LOOP;

    UPDATE agent_streams SET stored_through = v_through, updated_at = now()
     WHERE site_id = v_site AND stream = v_stream AND stored_through <> v_through;

    RETURN jsonb_build_object('stream', v_stream, 'stored_through', v_through);
END
$$;

-- ---------------------------------------------------------------- partitions and retention

-- The tables that grow forever (agent_events by received_at,
-- user_activity_log by created_at, sessions by started_at) are partitioned
-- by calendar month (UTC), named TABLE_YYYYMM, plus TABLE_default for rows
-- outside every month created so far (an agent clock far off). Called by
-- this file, by `mikrotik-central serve` at start and daily, and by
-- `mikrotik-central prune`: creates last month, this month and p_ahead
-- months ahead where missing; rows of a new month already in the default
-- partition are moved into it. Returns the partitions it created.
-- A table created before partitioning (not relkind 'p') is left as it is:
-- everything works on it unpartitioned (docs/scale.md: how to convert).
CREATE OR REPLACE FUNCTION edge_maintain_partitions(p_ahead integer DEFAULT 3)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    t      text;
    v_key  text;
    v_name text;
    v_from timestamptz;
    v_to   timestamptz;
BEGIN
    -- Two gateways starting together: one at a time.
    PERFORM pg_advisory_xact_lock(hashtext('edge_maintain_partitions'));
    FOREACH t IN ARRAY ARRAY['agent_events', 'user_activity_log', 'sessions'] LOOP
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM pg_class AS c
             WHERE c.oid = to_regclass(t) AND c.relkind = 'p');
        v_key := CASE t WHEN 'agent_events' THEN 'received_at'
                        WHEN 'user_activity_log' THEN 'created_at'
                        ELSE 'started_at' END;
        IF to_regclass(t || '_default') IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
            RETURN NEXT t || '_default';
        END IF;
        FOR i IN -1 .. greatest(p_ahead, 0) LOOP
            v_from := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))
                      AT TIME ZONE 'UTC';
            v_to := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i + 1))
                    AT TIME ZONE 'UTC';
            v_name := t || '_' || to_char(v_from AT TIME ZONE 'UTC', 'YYYYMM');
            CONTINUE WHEN to_regclass(v_name) IS NOT NULL;
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           v_name, t);
            EXECUTE format('WITH m AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                           'INSERT INTO %I SELECT * FROM m', t || '_default', v_key, v_key, v_name)
                USING v_from, v_to;
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           t, v_name, v_from, v_to);
            RETURN NEXT v_name;
        END LOOP;
    END LOOP;
END
$$;

-- Retention: drops the monthly partitions that end before the start of the
-- month p_keep_months ago (UTC) and deletes older rows from the default
-- partitions; `mikrotik-central prune --keep-months N`. Returns what it
-- dropped. agent_events rows go by received_at: an agent retries far
-- sooner than a month, so what is dropped is long below stored_through.
-- Sessions still open in a dropped month go with it.
CREATE OR REPLACE FUNCTION edge_drop_partitions_older_than(p_keep_months integer)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    t       text;
    v_key   text;
    v_part  text;
    v_cut   timestamptz;
    v_n     bigint;
BEGIN
    IF p_keep_months IS NULL OR p_keep_months < 1 THEN
        RAISE EXCEPTION 'keep_months must be at least 1' USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('edge_maintain_partitions'));
    v_cut := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => p_keep_months))
             AT TIME ZONE 'UTC';
    FOREACH t IN ARRAY ARRAY['agent_events', 'user_activity_log', 'sessions'] LOOP
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM pg_class AS c
             WHERE c.oid = to_regclass(t) AND c.relkind = 'p');
        v_key := CASE t WHEN 'agent_events' THEN 'received_at'
                        WHEN 'user_activity_log' THEN 'created_at'
                        ELSE 'started_at' END;
        FOR v_part IN
            SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
             WHERE i.inhparent = to_regclass(t) AND c.relname ~ ('^' || t || '_[0-9]{6}$')
               AND ((to_date(right(c.relname, 6), 'YYYYMM') + interval '1 month')::timestamp
                    AT TIME ZONE 'UTC') <= v_cut
             ORDER BY c.relname
        LOOP
            EXECUTE format('DROP TABLE %I', v_part);
            RETURN NEXT v_part;
        END LOOP;
        IF to_regclass(t || '_default') IS NOT NULL THEN
            EXECUTE format('DELETE FROM %I WHERE %I < $1', t || '_default', v_key) USING v_cut;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            IF v_n > 0 THEN
                RETURN NEXT format('%s: %s rows', t || '_default', v_n);
            END IF;
        END IF;
    END LOOP;
END
$$;

SELECT count(*) FROM edge_maintain_partitions();

-- Every primary key carries site_id, so that the tables can be distributed
-- by site_id (Citus, docs/scale.md) without a schema rewrite: the older
-- tables' bigserial-only keys become (site_id, id), with an index on id for
-- lookups by id alone. Done only while the key
-- is still (id) alone and no foreign key depends on it (then it stays, and
-- docs/scale.md lists the step).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['vouchers', 'subscriptions', 'alerts', 'mikrotik_connection_log',
                             'mikrotik_profiles'] LOOP
        CONTINUE WHEN to_regclass(t) IS NULL;
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM pg_constraint AS c
             WHERE c.conrelid = to_regclass(t) AND c.contype = 'p'
               AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                      WHERE attrelid = to_regclass(t) AND attname = 'id')]);
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_constraint AS f
             WHERE f.contype = 'f' AND f.confrelid = to_regclass(t));
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I, ADD PRIMARY KEY (site_id, id)',
                       t, t || '_pkey');
    END LOOP;
    -- Lookups by id alone (operator pages) keep an index.
    FOREACH t IN ARRAY ARRAY['vouchers', 'subscriptions', 'alerts', 'mikrotik_connection_log',
                             'mikrotik_profiles'] LOOP
        CONTINUE WHEN to_regclass(t) IS NULL;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (id)', t || '_id_idx', t);
    END LOOP;
END
$$;

-- Indexes for the fleet page's per-site aggregates (plans: docs/scale.md).
-- Active sessions per site: a partial index of the open sessions (index
-- only). Sessions by start time: BRIN (rows arrive in time order, a few
-- pages of index per month). Activations today: vouchers by first login.
CREATE INDEX IF NOT EXISTS sessions_started_brin ON sessions USING brin (started_at);
-- The sparkline's open sessions with their start, index only (small: open
-- sessions only).
CREATE INDEX IF NOT EXISTS sessions_open_started_idx ON sessions (site_id) INCLUDE (started_at)
    WHERE ended_at IS NULL;
-- The sparkline's closed sessions: those ended in the last 24 h, found
-- without reading the other millions (about 30 bytes per session).
CREATE INDEX IF NOT EXISTS sessions_ended_idx ON sessions (ended_at) INCLUDE (site_id, started_at)
    WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS vouchers_first_login_idx ON vouchers (first_login_at, site_id)
    WHERE first_login_at IS NOT NULL;

-- ---------------------------------------------------------------- site_desired_state

CREATE OR REPLACE FUNCTION site_desired_state(site_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_site     text := $1;
    v_vouchers jsonb;
    v_subs     jsonb;
BEGIN
    PERFORM _edge_check_site(v_site);
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'code', code, 'password', password, 'profile', profile_name,
               'comment', mikrotik_comment, 'status', status,
               'intent_at', to_char(intent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
               ORDER BY code), '[]'::jsonb)
      INTO v_vouchers FROM vouchers WHERE site_id = v_site;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'pppoe_username', pppoe_username, 'password', password, 'profile', profile_name,
               'comment', comment, 'status', status,
               'intent_at', to_char(intent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
               ORDER BY pppoe_username), '[]'::jsonb)
      INTO v_subs FROM subscriptions WHERE site_id = v_site;
    RETURN jsonb_build_object('vouchers', v_vouchers, 'subscriptions', v_subs,
                              'version', md5(v_vouchers::text || '|' || v_subs::text));
END
$$;

-- ---------------------------------------------------------------- site_desired_version

-- A counter per site, bumped in the same transaction as every change to
-- what site_desired_state exports for that site (code/username, password,
-- profile, comment, status, intent_at of vouchers and subscriptions; an
-- insert or a delete). Agents poll site_desired_version cheaply and fetch
-- the whole desired state only when it moved. Changes made by ingest_batch
-- (edge.applying) are reports of what the router already holds
-- (activations, expiries, adoptions, intents made at the site): they do not
-- bump it, so an activation never sends the agent into a full sync. A site
-- without a row is at version 0.
CREATE TABLE IF NOT EXISTS site_desired_versions (
    site_id    text PRIMARY KEY,
    version    bigint NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- Statement-level, over the transition tables: a batch of 10,000 vouchers
-- in one INSERT bumps its site once. Sites in a stable order, so two
-- statements touching the same sites cannot deadlock on the counters. The
-- trigger functions are SECURITY DEFINER: whoever may write vouchers (an
-- operator's role) needs no privilege on the counters, and nobody may call
-- the bump itself.
CREATE OR REPLACE FUNCTION _edge_bump_desired(p_sites text[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO site_desired_versions AS d (site_id, version)
    SELECT s, 1 FROM (SELECT DISTINCT s FROM unnest(p_sites) AS u(s) WHERE s IS NOT NULL) x
     ORDER BY s
    ON CONFLICT (site_id) DO UPDATE SET version = d.version + 1, changed_at = now()
$$;

CREATE OR REPLACE FUNCTION _edge_vouchers_desired_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF coalesce(current_setting('edge.applying', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM _edge_bump_desired(ARRAY(SELECT DISTINCT site_id FROM edge_new));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM _edge_bump_desired(ARRAY(SELECT DISTINCT site_id FROM edge_old));
    ELSE
        PERFORM _edge_bump_desired(ARRAY(
            SELECT DISTINCT unnest(ARRAY[o.site_id, n.site_id])
              FROM edge_old o JOIN edge_new n ON n.id = o.id
             WHERE (o.site_id, o.code, o.password, o.profile_name, o.mikrotik_comment,
                    o.status, o.intent_at)
                   IS DISTINCT FROM
                   (n.site_id, n.code, n.password, n.profile_name, n.mikrotik_comment,
                    n.status, n.intent_at)));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION _edge_subscriptions_desired_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF coalesce(current_setting('edge.applying', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM _edge_bump_desired(ARRAY(SELECT DISTINCT site_id FROM edge_new));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM _edge_bump_desired(ARRAY(SELECT DISTINCT site_id FROM edge_old));
    ELSE
        PERFORM _edge_bump_desired(ARRAY(
            SELECT DISTINCT unnest(ARRAY[o.site_id, n.site_id])
              FROM edge_old o JOIN edge_new n ON n.id = o.id
             WHERE (o.site_id, o.pppoe_username, o.password, o.profile_name, o.comment,
                    o.status, o.intent_at)
                   IS DISTINCT FROM
                   (n.site_id, n.pppoe_username, n.password, n.profile_name, n.comment,
                    n.status, n.intent_at)));
    END IF;
    RETURN NULL;
END
$$;

-- A trigger with transition tables fires on one event only: three each.
DROP TRIGGER IF EXISTS vouchers_desired_ins ON vouchers;
CREATE TRIGGER vouchers_desired_ins AFTER INSERT ON vouchers
    REFERENCING NEW TABLE AS edge_new
    FOR EACH STATEMENT EXECUTE FUNCTION _edge_vouchers_desired_changed();
DROP TRIGGER IF EXISTS vouchers_desired_upd ON vouchers;
CREATE TRIGGER vouchers_desired_upd AFTER UPDATE ON vouchers
    REFERENCING OLD TABLE AS edge_old NEW TABLE AS edge_new
    FOR EACH STATEMENT EXECUTE FUNCTION _edge_vouchers_desired_changed();
DROP TRIGGER IF EXISTS vouchers_desired_del ON vouchers;
CREATE TRIGGER vouchers_desired_del AFTER DELETE ON vouchers
    REFERENCING OLD TABLE AS edge_old
    FOR EACH STATEMENT EXECUTE FUNCTION _edge_vouchers_desired_changed();
DROP TRIGGER IF EXISTS subscriptions_desired_ins ON subscriptions;
CREATE TRIGGER subscriptions_desired_ins AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS edge_new
    FOR EACH STATEMENT EXECUTE FUNCTION _edge_subscriptions_desired_changed();
DROP TRIGGER IF EXISTS subscriptions_desired_upd ON subscriptions;
CREATE TRIGGER subscriptions_desired_upd AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS edge_old NEW TABLE AS edge_new
    FOR EACH STATEMENT EXECUTE FUNCTION _edge_subscriptions_desired_changed();
DROP TRIGGER IF EXISTS subscriptions_desired_del ON subscriptions;
CREATE TRIGGER subscriptions_desired_del AFTER DELETE ON subscriptions
    REFERENCING OLD TABLE AS edge_old
    FOR EACH STATEMENT EXECUTE FUNCTION _edge_subscriptions_desired_changed();

-- The site's counter (0 before its first change). Same site rule as
-- site_desired_state; one index lookup, for agents polling every few seconds.
CREATE OR REPLACE FUNCTION site_desired_version(site_id text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_site    text := $1;
    v_version bigint;
BEGIN
    PERFORM _edge_check_site(v_site);
    SELECT version INTO v_version FROM site_desired_versions WHERE site_id = v_site;
    RETURN coalesce(v_version, 0);
END
$$;

-- Only the owner (and roles granted EXECUTE, e.g. edge_agent for PostgREST)
-- may call the entry points; the helpers are internal.
REVOKE ALL ON FUNCTION ingest_batch(text, json) FROM PUBLIC;
REVOKE ALL ON FUNCTION site_desired_state(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION site_desired_version(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION _edge_bump_desired(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION _edge_apply(text, bigint, timestamptz, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION _edge_apply_set(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION _edge_voucher_seen(text, _edge_ev[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION edge_maintain_partitions(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION edge_drop_partitions_older_than(integer) FROM PUBLIC;

-- ---------------------------------------------------------------- page logins

-- Sessions of operators logged in to the pages (mikrotik-central serve):
-- the sha256 hex of the random cookie value, never the value itself, and
-- the session's CSRF token that every page form carries. Expired rows are
-- deleted when the next session starts.
CREATE TABLE IF NOT EXISTS operator_sessions (
    session_hash text PRIMARY KEY,
    operator_id  bigint NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS operator_sessions_expires_idx ON operator_sessions (expires_at);
