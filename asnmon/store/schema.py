"""The database schema: numbered migrations, applied in order by ``StoreBase.migrate``."""

from __future__ import annotations

# Numbered migrations: append, never edit a released one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
    CREATE SEQUENCE seq_injection START 1;
    CREATE SEQUENCE seq_result START 1;
    CREATE SEQUENCE seq_flag START 1;
    CREATE SEQUENCE seq_calibration START 1;
    CREATE SEQUENCE seq_change START 1;
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        folder VARCHAR,
        worklist VARCHAR,
        assay_name VARCHAR,
        assay_unit VARCHAR,
        lloq DOUBLE,
        uloq DOUBLE,
        planned INTEGER,
        created_at TIMESTAMP,
        verdict VARCHAR,
        verdict_reason VARCHAR
    );
    CREATE TABLE injections (
        injection_id BIGINT PRIMARY KEY DEFAULT nextval('seq_injection'),
        run_id VARCHAR NOT NULL,
        position INTEGER,
        file VARCHAR NOT NULL,
        path VARCHAR,
        sha256 VARCHAR NOT NULL,
        version INTEGER NOT NULL DEFAULT 1,
        superseded BOOLEAN NOT NULL DEFAULT FALSE,
        sample_id VARCHAR,
        sample_type VARCHAR,
        level VARCHAR,
        nominal DOUBLE,
        matrix VARCHAR,
        dilution DOUBLE,
        normalizer DOUBLE,
        normalizer_unit VARCHAR,
        volume_ul DOUBLE,
        group_name VARCHAR,
        in_worklist BOOLEAN,
        acquired_at VARCHAR,
        acquired_order DOUBLE,
        ingested_at TIMESTAMP,
        mzml_run_id VARCHAR,
        instrument VARCHAR,
        polarity VARCHAR,
        error VARCHAR,
        notes VARCHAR
    );
    CREATE INDEX idx_injections_run ON injections(run_id);
    CREATE INDEX idx_injections_sha ON injections(sha256);
    CREATE TABLE peaks (
        injection_id BIGINT NOT NULL,
        transition VARCHAR NOT NULL,
        role VARCHAR,
        apex_rt DOUBLE, start_rt DOUBLE, end_rt DOUBLE,
        area DOUBLE, height DOUBLE,
        baseline_start DOUBLE, baseline_end DOUBLE,
        fwhm DOUBLE, sn DOUBLE, points INTEGER,
        saturated BOOLEAN, truncated BOOLEAN
    );
    CREATE TABLE traces (
        injection_id BIGINT NOT NULL,
        transition VARCHAR NOT NULL,
        rt BLOB,        -- float32 little-endian: for review plots, ~10x cheaper than DOUBLE[]
        intensity BLOB
    );
    CREATE TABLE calibrations (
        calibration_id BIGINT PRIMARY KEY DEFAULT nextval('seq_calibration'),
        run_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        model VARCHAR, weighting VARCHAR, zero_intercept BOOLEAN,
        c0 DOUBLE, c1 DOUBLE, c2 DOUBLE, r2 DOUBLE,
        accepted BOOLEAN, reason VARCHAR,
        lloq DOUBLE, uloq DOUBLE,
        carried_over_from VARCHAR,
        created_at TIMESTAMP
    );
    CREATE TABLE calibration_points (
        calibration_id BIGINT NOT NULL,
        injection_id BIGINT,
        sample_id VARCHAR, level VARCHAR, nominal DOUBLE, area_ratio DOUBLE,
        back_calculated DOUBLE, accuracy_pct DOUBLE, excluded BOOLEAN, reason VARCHAR
    );
    CREATE TABLE results (
        result_id BIGINT PRIMARY KEY DEFAULT nextval('seq_result'),
        injection_id BIGINT NOT NULL,
        calibration_id BIGINT,
        calibration_version INTEGER,
        status VARCHAR,
        area_ratio DOUBLE, conc_vial DOUBLE, conc DOUBLE, unit VARCHAR,
        normalized_value DOUBLE, normalized_unit VARCHAR, accuracy_pct DOUBLE,
        current BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP
    );
    CREATE INDEX idx_results_injection ON results(injection_id);
    CREATE TABLE flags (
        flag_id BIGINT PRIMARY KEY DEFAULT nextval('seq_flag'),
        run_id VARCHAR NOT NULL,
        injection_id BIGINT,
        code VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        message VARCHAR, action VARCHAR,
        value DOUBLE, limit_value DOUBLE, source VARCHAR, details VARCHAR,
        active BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP, deactivated_at TIMESTAMP
    );
    CREATE INDEX idx_flags_run ON flags(run_id);
    CREATE TABLE acknowledgements (
        flag_id BIGINT NOT NULL,
        by_name VARCHAR NOT NULL,
        comment VARCHAR,
        acked_at TIMESTAMP
    );
    CREATE TABLE changes (
        seq BIGINT PRIMARY KEY DEFAULT nextval('seq_change'),
        changed_at TIMESTAMP, run_id VARCHAR, kind VARCHAR, injection_id BIGINT
    );
    CREATE TABLE monitor_status (
        key VARCHAR PRIMARY KEY, value VARCHAR, updated_at TIMESTAMP
    );
    """,
    ),
    # 2: the IS response as the QC rules judged it on arrival (% of the causal reference),
    # so every view shows the number the IS_LOW/IS_HIGH flag was raised on.
    (2, "ALTER TABLE injections ADD COLUMN is_pct DOUBLE;"),
    # 3: duplicates are found in the ingestor's memory of its run; an index on every
    # hash only slowed each insert down.
    (3, "DROP INDEX idx_injections_sha;"),
    # 4: review (issue 13): the hash-chained audit trail, accounts, signatures; each
    # acknowledgement gets the role of its author and the audit event that recorded it.
    (
        4,
        """
    CREATE TABLE audit_events (
        event_id BIGINT NOT NULL,
        at_utc TIMESTAMP NOT NULL,
        run_id VARCHAR,
        injection_id BIGINT,
        actor VARCHAR NOT NULL,
        role VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        old VARCHAR,
        new VARCHAR,
        reason VARCHAR NOT NULL,
        prev_hash VARCHAR NOT NULL,
        hash VARCHAR NOT NULL
    );
    CREATE INDEX idx_audit_run ON audit_events(run_id);
    CREATE TABLE users (
        name VARCHAR NOT NULL,
        role VARCHAR NOT NULL,
        password_hash VARCHAR NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMP,
        password_changed_at TIMESTAMP
    );
    CREATE TABLE signatures (
        event_id BIGINT NOT NULL,
        run_id VARCHAR NOT NULL,
        meaning VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        role VARCHAR NOT NULL,
        signed_at TIMESTAMP NOT NULL,
        local_time VARCHAR NOT NULL,
        reason VARCHAR,
        results_digest VARCHAR
    );
    ALTER TABLE acknowledgements ADD COLUMN role VARCHAR;
    ALTER TABLE acknowledgements ADD COLUMN event_id BIGINT;
    """,
    ),
)
