// Space in this browser: persistent storage, usage and quota, and how long local copies are kept.
//
// The user's copy is the last to go: a recording's audio stays here until the user deletes it, or
// until the server has reported it `completed` and the retention the user chose has passed since.
// Failed recordings are never removed by the page: those older than a week are offered for clean-up.

const RETENTION_KEY = 'tusd-py-demo:retention'
const DAY_MS = 24 * 60 * 60 * 1000
export const STALE_FAILURE_MS = 7 * DAY_MS

/** The choices offered, in ms after `completed` (null: until the user deletes it). */
export const RETENTION_CHOICES = [
  [null, 'until I delete it'],
  [0, 'until the server has completed it'],
  [DAY_MS, 'for 1 day after the server completed it'],
  [7 * DAY_MS, 'for 7 days after the server completed it'],
  [30 * DAY_MS, 'for 30 days after the server completed it']
]

export function loadRetention () {
  const saved = localStorage.getItem(RETENTION_KEY)
  return saved === null || saved === 'null' ? null : Number(saved)
}

export function saveRetention (ms) {
  localStorage.setItem(RETENTION_KEY, String(ms))
}

/** Recordings whose local copy may go now: completed on the server, and kept here long enough. */
export function expiredLocalCopies (recordings, retentionMs, now) {
  if (retentionMs === null) return []
  return recordings.filter(rec => rec.status === 'completed' && rec.localCopy !== false &&
    rec.completedAt && now - rec.completedAt >= retentionMs)
}

/** Failed recordings older than a week (since they failed): offered for clean-up, never removed unasked. */
export function staleFailures (recordings, now) {
  return recordings.filter(rec => rec.status === 'failed' && now - (rec.failedAt || rec.createdAt) >= STALE_FAILURE_MS)
}

/** Asks for storage the browser will not evict under pressure; what it granted (false when it cannot tell). */
export async function requestPersistence () {
  if (!navigator.storage || !navigator.storage.persist) return false
  return (await navigator.storage.persisted()) || navigator.storage.persist()
}

export async function estimate () {
  if (!navigator.storage || !navigator.storage.estimate) return null
  const { usage, quota } = await navigator.storage.estimate()
  return { usage, quota, persisted: await navigator.storage.persisted() }
}
