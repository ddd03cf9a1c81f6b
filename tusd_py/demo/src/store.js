// IndexedDB: every recording's metadata and its audio, kept until the user deletes it.
// Two object stores so that a status change rewrites a few fields, never the audio.

const DB_NAME = 'tusd-py-demo'
const VERSION = 1
const META = 'recordings'
const AUDIO = 'audio'

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
    req.onupgradeneeded = () => {
      req.result.createObjectStore(META, { keyPath: 'id' })
      req.result.createObjectStore(AUDIO)
    }
    opened = request(req)
  }
  return opened
}

/** Saves a new recording and its audio in one transaction: both are kept, or neither. */
export async function addRecording (meta, blob) {
  const tx = (await db()).transaction([META, AUDIO], 'readwrite')
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
