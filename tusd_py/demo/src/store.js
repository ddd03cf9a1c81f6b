// IndexedDB: every recording's metadata and its audio, and the slices of a take being recorded.
// Separate object stores so that a status change rewrites a few fields, never the audio, and so
// that a slice is one small write: a crash keeps every slice already committed.

const DB_NAME = 'tusd-py-demo'
const VERSION = 2
const META = 'recordings'
const AUDIO = 'audio'
const TAKES = 'takes' // a take being recorded: { id, name, type, startedAt }
const SLICES = 'slices' // its audio so far: { take, seq, blob, at }

let opened = null

function request (req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

function done (tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'))
  })
}

function db () {
  if (!opened) {
    const req = indexedDB.open(DB_NAME, VERSION)
    req.onupgradeneeded = event => {
      const names = req.result.objectStoreNames
      if (!names.contains(META)) req.result.createObjectStore(META, { keyPath: 'id' })
      if (!names.contains(AUDIO)) req.result.createObjectStore(AUDIO)
      if (!names.contains(TAKES)) req.result.createObjectStore(TAKES, { keyPath: 'id' })
      if (!names.contains(SLICES)) req.result.createObjectStore(SLICES, { keyPath: ['take', 'seq'] })
    }
    opened = request(req)
  }
  return opened
}

// Written to disk before the transaction completes: a slice must survive a power cut, not only a crash.
const STRICT = { durability: 'strict' }

/** Saves a new recording and its audio in one transaction: both are kept, or neither. */
export async function addRecording (meta, blob) {
  const tx = (await db()).transaction([META, AUDIO], 'readwrite', STRICT)
  tx.objectStore(META).put(meta)
  tx.objectStore(AUDIO).put(blob, meta.id)
  await done(tx)
}

export async function updateRecording (id, changes) {
  const tx = (await db()).transaction(META, 'readwrite')
  const store = tx.objectStore(META)
  const current = await request(store.get(id))
  if (current) store.put({ ...current, ...changes })
  await done(tx)
  return current ? { ...current, ...changes } : null
}

export async function allRecordings () {
  const tx = (await db()).transaction(META, 'readonly')
  const all = await request(tx.objectStore(META).getAll())
  return all.sort((a, b) => a.createdAt - b.createdAt)
}

export async function audioOf (id) {
  const tx = (await db()).transaction(AUDIO, 'readonly')
  return request(tx.objectStore(AUDIO).get(id))
}

export async function removeRecording (id) {
  const tx = (await db()).transaction([META, AUDIO], 'readwrite')
  tx.objectStore(META).delete(id)
  tx.objectStore(AUDIO).delete(id)
  await done(tx)
}

/** Drops the audio kept here, not the recording: the server has it (retention). */
export async function removeLocalAudio (id) {
  const tx = (await db()).transaction(AUDIO, 'readwrite')
  tx.objectStore(AUDIO).delete(id)
  await done(tx)
}

// -- takes: a recording in slices ------------------------------------------------------------------

const slicesOf = id => IDBKeyRange.bound([id, 0], [id, Infinity])

export async function beginTake (take) {
  const tx = (await db()).transaction(TAKES, 'readwrite', STRICT)
  tx.objectStore(TAKES).put(take)
  await done(tx)
}

export async function appendSlice (take, seq, blob, at) {
  const tx = (await db()).transaction(SLICES, 'readwrite', STRICT)
  tx.objectStore(SLICES).put({ take, seq, blob, at })
  await done(tx)
}

export async function unfinishedTakes () {
  const tx = (await db()).transaction(TAKES, 'readonly')
  return request(tx.objectStore(TAKES).getAll())
}

/**
 * Closes a take: its slices, in order, become one recording (metadata from `meta(take, lastSliceAt)`)
 * and the take and its slices go, all in one transaction. A take without audio is dropped (null).
 */
export async function finishTake (id, meta) {
  const tx = (await db()).transaction([TAKES, SLICES, META, AUDIO], 'readwrite', STRICT)
  const take = await request(tx.objectStore(TAKES).get(id))
  const slices = await request(tx.objectStore(SLICES).getAll(slicesOf(id)))
  let rec = null
  if (take && slices.length) {
    const blob = new Blob(slices.map(slice => slice.blob), { type: take.type })
    rec = { ...meta(take, slices[slices.length - 1].at), size: blob.size }
    tx.objectStore(META).put(rec)
    tx.objectStore(AUDIO).put(blob, id)
  }
  tx.objectStore(SLICES).delete(slicesOf(id))
  tx.objectStore(TAKES).delete(id)
  await done(tx)
  return rec
}
