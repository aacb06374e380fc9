-- Person accounts (issue #15, point 1): students and staff of the roster sign in to the
-- mobile page with a password set from an invitation link, or through the university's
-- CAS. Kept apart from operators: their own sessions table and cookie, so that a person's
-- session can never reach an operator API and an operator's never reaches /api/me.

CREATE TABLE person_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       text NOT NULL UNIQUE REFERENCES people (id) ON DELETE CASCADE,
    password_hash   text,                 -- argon2; NULL until an invitation is accepted
    password_set_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz
);

-- One-time links an administrator sends; only the token's SHA-256 is kept.
CREATE TABLE person_invitations (
    token_hash  text PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES person_accounts (id) ON DELETE CASCADE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX person_invitations_account ON person_invitations (account_id);
CREATE INDEX person_invitations_expires ON person_invitations (expires_at);

CREATE TABLE person_sessions (
    token_hash   text PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES person_accounts (id) ON DELETE CASCADE,
    via          text NOT NULL CHECK (via IN ('password', 'cas')),
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX person_sessions_account ON person_sessions (account_id);
CREATE INDEX person_sessions_expires ON person_sessions (expires_at);

-- Deactivating a person (roster import, admin API) ends their sessions in the same
-- statement; the session lookup also refuses inactive people, so nothing slips between.
CREATE FUNCTION campusgate_end_person_sessions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM person_sessions s USING person_accounts a
     WHERE a.id = s.account_id AND a.person_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER people_deactivated_end_sessions AFTER UPDATE OF active ON people
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active)
    EXECUTE FUNCTION campusgate_end_person_sessions();
