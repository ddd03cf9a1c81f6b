"""The PostgreSQL recording store's hot paths, each one statement sent in autocommit.

Creating a recording, finishing an upload (its job queued, workers told), claiming a job and
completing it run on every upload. Each is one statement, and a worker that completes a job
claims its next one in the same statement (``COMPLETE_CLAIM``: one round trip per job while the
queue holds work): the rows it changes are locked and
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


def _next_due(queued: str, running: str, *, except_job: str = "") -> str:
    """When a job is next due (a queued one's time, a running one's lease end, ``except_job``'s
    left out), each read from the top of its index."""
    other = f" AND id <> {except_job}" if except_job else ""
    return (
        f"LEAST((SELECT not_before FROM jobs WHERE status = {queued} ORDER BY not_before LIMIT 1),"
        f" (SELECT lease_until FROM jobs WHERE status = {running}{other} ORDER BY lease_until LIMIT 1))"
    )


def _claiming(p: dict[str, str], *, except_job: str = "") -> str:
    """The claim's CTEs, ``job`` and ``rec``, with the parameters named in ``p``: a due queued job
    (or a running one whose lease ran out; never ``except_job``) claimed with its recording."""
    other = f" AND id <> {except_job}" if except_job else ""
    return f"""job AS (
    UPDATE jobs SET status = {p["running"]}, attempts = attempts + 1, claimed_at = {p["now"]},
        claim_token = claim_token + 1, claimed_by = {p["claimant"]}, lease_until = {p["lease"]}, updated_at = {p["now"]}
    WHERE id = (
        SELECT id FROM jobs WHERE ((status = {p["queued"]} AND not_before <= {p["now"]})
            OR (status = {p["running"]} AND lease_until < {p["now"]})){other}
        ORDER BY not_before, created_at LIMIT 1 FOR UPDATE SKIP LOCKED
    ) RETURNING *
), rec AS (
    UPDATE recordings r SET status = {p["processing"]}, attempts = r.attempts + 1, updated_at = {p["now"]}
    FROM job WHERE r.id = job.upload_id AND r.status = ANY({p["from"]}::text[]) RETURNING r.*
)"""


def _claim_answer(p: dict[str, str], *, except_job: str = "") -> str:
    """The claim's answer: the job and recording as JSON, or when none is due, the next due time."""
    due = _next_due(p["queued"], p["running"], except_job=except_job)
    return f"""(SELECT to_jsonb(job) FROM job)::text AS job, (SELECT to_jsonb(rec) FROM rec)::text AS rec,
    CASE WHEN NOT EXISTS (SELECT FROM job) THEN {due} END AS due"""


# $1 queued, $2 running.
NEXT_DUE = _next_due("$1", "$2")
CLAIM_FROM, CLAIM_TO = moves(Event.JOB_CLAIMED)
# $1 queued, $2 running, $3 now, $4 claimant, $5 lease end, $6 statuses a claim may follow, $7 processing.
# A due queued job (or a running one whose lease ran out) claimed with its recording, or, when
# none is due, the time the next one will be: one statement, both rows locked jobs first.
_CLAIM_PARAMS = {
    "queued": "$1", "running": "$2", "now": "$3", "claimant": "$4", "lease": "$5", "from": "$6", "processing": "$7",
}  # fmt: skip
CLAIM = f"""
WITH {_claiming(_CLAIM_PARAMS)}
SELECT {_claim_answer(_CLAIM_PARAMS)}
"""
COMPLETE_FROM, COMPLETE_TO = moves(Event.JOB_SUCCEEDED)
# $1 job, $2 claim token, $3 running, $4 done, $5 now, $6 results, $7 statuses success may follow, $8 completed.
# Done only while the claim is current and the recording may complete (the job locked first, then the
# recording, the order of the claim). ``moved`` names the recording completed, if any.
_COMPLETING = """cjob AS (
    SELECT id, upload_id FROM jobs WHERE id = $1 AND status = $3 AND claim_token = $2 FOR UPDATE
), crec AS (
    SELECT r.id FROM recordings r JOIN cjob ON r.id = cjob.upload_id WHERE r.status = ANY($7::text[]) FOR UPDATE OF r
), done AS (
    UPDATE jobs j SET status = $4, updated_at = $5, last_error = NULL, lease_until = NULL
    FROM crec WHERE j.id = $1 AND j.upload_id = crec.id RETURNING j.upload_id
), moved AS (
    UPDATE recordings r SET status = $8, results = $6, completed_at = $5, last_error = NULL, updated_at = $5
    FROM done WHERE r.id = done.upload_id RETURNING r.id
)"""
# One statement. False: a stale claim or a mismatch, looked at again.
COMPLETE = f"""
WITH {_COMPLETING}
SELECT EXISTS (SELECT FROM moved)
"""
# $1-$8 as COMPLETE; $9 queued, $10 claimant, $11 lease end, $12 statuses a claim may follow, $13 processing.
# COMPLETE, then CLAIM of another due job (never the one completed: a row is changed once per
# statement), in one statement: the completion's rows locked and changed as COMPLETE does, the
# claim's as CLAIM does (SKIP LOCKED: it waits for no other claimant). ``completed`` False: the
# completion was refused (looked at again); ``job`` NULL: nothing due, ``due`` says when (the job
# just completed left out).
_NEXT_PARAMS = {
    "queued": "$9", "running": "$3", "now": "$5", "claimant": "$10", "lease": "$11", "from": "$12", "processing": "$13",
}  # fmt: skip
COMPLETE_CLAIM = f"""
WITH {_COMPLETING}, {_claiming(_NEXT_PARAMS, except_job="$1")}
SELECT EXISTS (SELECT FROM moved) AS completed, {_claim_answer(_NEXT_PARAMS, except_job="$1")}
"""
