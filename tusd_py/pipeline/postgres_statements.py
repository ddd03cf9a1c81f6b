"""The PostgreSQL recording store's hot paths, each one statement sent in autocommit.

Creating a recording, finishing an upload (its job queued, workers told), claiming a job and
completing it run on every upload. Each is one statement: the rows it changes are locked and
changed together (jobs before recordings, the order every other path takes), and the status
rule of :mod:`tusd_py.pipeline.states` is applied as ``status = ANY(<the statuses the event may
follow>)``, from :func:`~tusd_py.pipeline.states.moves`. A statement that finds its row in no
such status changes nothing, and the store looks again on its transactional path, which names
the reason. tests/postgres/test_coordination_budget.py counts them and EXPLAINs each.
"""

from __future__ import annotations

from tusd_py.pipeline.states import Event, moves

COLUMNS = 'id, owner, status, mode, filename, length, "offset", created_at, updated_at'
CREATE = (
    f"INSERT INTO recordings ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (id) DO NOTHING RETURNING *"
)
FINISH_FROM, FINISH_TO = moves(Event.UPLOAD_FINISHED)
# $1 id, $2 offset or NULL, $3 now, $4 new job id, $5 statuses the finish may follow, $6 uploaded, $7 channel.
# The recording locked, its job inserted (or the one from an earlier life kept), the status moved,
# idle workers told (at commit): one statement. No row: missing, finished already or not allowed.
FINISH = """
WITH rec AS (
    SELECT id, length, "offset" FROM recordings WHERE id = $1 AND status = ANY($5::text[]) FOR UPDATE
), job AS (
    INSERT INTO jobs (id, upload_id, status, not_before, created_at, updated_at)
    SELECT $4, id, 'queued', $3::float8, $3, $3 FROM rec ON CONFLICT (upload_id) DO NOTHING RETURNING id
), moved AS (
    UPDATE recordings r SET status = $6, updated_at = $3, uploaded_at = $3,
        "offset" = GREATEST(COALESCE($2::bigint, rec.length, 0), rec."offset"),
        length = COALESCE(rec.length, GREATEST(COALESCE($2::bigint, 0), rec."offset")),
        job_id = COALESCE((SELECT id FROM job), (SELECT id FROM jobs WHERE upload_id = $1))
    FROM rec WHERE r.id = rec.id RETURNING r.*
)
SELECT moved.*, (SELECT pg_notify($7, '') FROM job) IS NULL AS notified, EXISTS (SELECT FROM job) AS inserted
FROM moved
"""
# $1 queued, $2 running: when a job is next due (a queued one's time, a running one's lease end),
# each read from the top of its index.
NEXT_DUE = (
    "LEAST((SELECT not_before FROM jobs WHERE status = $1 ORDER BY not_before LIMIT 1),"
    " (SELECT lease_until FROM jobs WHERE status = $2 ORDER BY lease_until LIMIT 1))"
)
CLAIM_FROM, CLAIM_TO = moves(Event.JOB_CLAIMED)
# $1 queued, $2 running, $3 now, $4 claimant, $5 lease end, $6 statuses a claim may follow, $7 processing.
# A due queued job (or a running one whose lease ran out) claimed with its recording, or, when
# none is due, the time the next one will be: one statement, both rows locked jobs first.
CLAIM = f"""
WITH job AS (
    UPDATE jobs SET status = $2, attempts = attempts + 1, claimed_at = $3, claim_token = claim_token + 1,
        claimed_by = $4, lease_until = $5, updated_at = $3
    WHERE id = (
        SELECT id FROM jobs WHERE (status = $1 AND not_before <= $3) OR (status = $2 AND lease_until < $3)
        ORDER BY not_before, created_at LIMIT 1 FOR UPDATE SKIP LOCKED
    ) RETURNING *
), rec AS (
    UPDATE recordings r SET status = $7, attempts = r.attempts + 1, updated_at = $3
    FROM job WHERE r.id = job.upload_id AND r.status = ANY($6::text[]) RETURNING r.*
)
SELECT (SELECT to_jsonb(job) FROM job)::text AS job, (SELECT to_jsonb(rec) FROM rec)::text AS rec,
    CASE WHEN NOT EXISTS (SELECT FROM job) THEN {NEXT_DUE} END AS due
"""
COMPLETE_FROM, COMPLETE_TO = moves(Event.JOB_SUCCEEDED)
# $1 job, $2 claim token, $3 running, $4 done, $5 now, $6 results, $7 statuses success may follow, $8 completed.
# Done only while the claim is current and the recording may complete (the job locked first, then the
# recording, the order of the claim): one statement. False: a stale claim or a mismatch, looked at again.
COMPLETE = """
WITH job AS (
    SELECT id, upload_id FROM jobs WHERE id = $1 AND status = $3 AND claim_token = $2 FOR UPDATE
), rec AS (
    SELECT r.id FROM recordings r JOIN job ON r.id = job.upload_id WHERE r.status = ANY($7::text[]) FOR UPDATE OF r
), done AS (
    UPDATE jobs j SET status = $4, updated_at = $5, last_error = NULL, lease_until = NULL
    FROM rec WHERE j.id = $1 AND j.upload_id = rec.id RETURNING j.upload_id
), moved AS (
    UPDATE recordings r SET status = $8, results = $6, completed_at = $5, last_error = NULL, updated_at = $5
    FROM done WHERE r.id = done.upload_id RETURNING r.id
)
SELECT EXISTS (SELECT FROM moved)
"""
