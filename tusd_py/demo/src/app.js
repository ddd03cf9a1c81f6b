// The recorder page: capture or pick audio, keep it in IndexedDB, upload it when the server is there.
import { Server, serverIdOf } from './api.js'
import { ProcessingWatcher } from './processing.js'
import { UploadQueue, WAITING, forgetUploadUrls } from './queue.js'
import { Recorder, recoverTakes } from './recorder.js'
import { RETENTION_CHOICES, estimate, expiredLocalCopies, loadRetention, requestPersistence, saveRetention, staleFailures } from './space.js'
import { addRecording, allRecordings, audioOf, removeLocalAudio, removeRecording, updateRecording } from './store.js'
import { Token } from './token.js'
import { RecordingsView, formatBytes } from './view.js'

const $ = id => document.getElementById(id)
const tokenInput = $('token')
const token = new Token()
let recordings = []
let retention = loadRetention()
const server = new Server(() => token.get(), signIn)

function newId () {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}

function announce (text) {
  $('announcer').textContent = text
}

/**
 * The server wants a (new) token: say so, rather than fail the recordings waiting to upload.
 * Returns the short note those recordings show.
 */
function signIn () {
  const alert = $('signin')
  alert.textContent = token.value && !token.expired
    ? 'Sign in again: the server did not accept your token. Paste a new one; your recordings wait here.'
    : token.expired
      ? 'Sign in again: your token has expired. Paste a new one; your recordings wait here.'
      : 'Sign in to upload: paste a token. Your recordings wait here until then.'
  alert.hidden = false
  return token.value ? 'sign in again' : 'sign in to upload'
}

// -- state: IndexedDB is the truth, `recordings` its copy in memory --------------------------------

async function changed (id, changes) {
  if (id !== null && changes) {
    const current = recordings.find(rec => rec.id === id)
    // When the server said so first: what the retention and the clean-up count from.
    if (changes.status === 'completed' && !(current && current.completedAt)) changes = { ...changes, completedAt: Date.now() }
    if (changes.status === 'failed' && !(current && current.failedAt)) changes = { ...changes, failedAt: Date.now() }
    const updated = await updateRecording(id, changes)
    const index = recordings.findIndex(rec => rec.id === id)
    if (updated && index >= 0) recordings[index] = updated
    if (changes.status && updated) announce(`${updated.name}: ${changes.status}`)
    if (changes.status === 'uploaded') watcher.kick()
    if (changes.status === 'completed' || changes.status === 'failed') tidy()
  }
  render()
}

const queue = new UploadQueue({ server, list: () => recordings, changed })
const watcher = new ProcessingWatcher({ server, list: () => recordings, changed })
const view = new RecordingsView({
  list: $('recordings'),
  empty: $('empty'),
  onRetry: retry,
  onDelete: remove,
  playbackUrl
})

function render () {
  view.render(recordings, { progress: queue.progress, retryAt: queue.retryAt })
  const waiting = recordings.filter(rec => WAITING.has(rec.status)).length
  const online = navigator.onLine ? 'Online' : 'Offline'
  $('connection').textContent = `${online}. ${waiting ? `${waiting} waiting to upload.` : 'Nothing waiting to upload.'}`
}

/**
 * Where the player reads the audio from: the copy in this browser (there even offline) while it is
 * kept, then a signed download link from the server (POST .../download-url), which an <audio>
 * element can use without sending the token.
 */
async function playbackUrl (rec) {
  if (rec.localCopy === false) return rec.uploadUrl ? server.downloadUrl(serverIdOf(rec.uploadUrl)) : ''
  const blob = await audioOf(rec.id)
  return blob ? URL.createObjectURL(blob) : ''
}

function added (rec, message) {
  recordings.push(rec)
  announce(message)
  render()
  showSpace()
  queue.kick()
}

async function keep (blob, name, source) {
  const rec = { id: newId(), name, type: blob.type, size: blob.size, source, createdAt: Date.now(), status: 'recorded', uploadUrl: null }
  await addRecording(rec, blob) // before any network request: the recording is safe from here on
  added(rec, `${name} saved in this browser`)
}

// -- space: usage, quota, retention, clean-up -----------------------------------------------------

async function showSpace () {
  const space = await estimate()
  const el = $('storage')
  if (!space) {
    el.textContent = 'This browser does not say how much space the recordings use.'
    return
  }
  el.dataset.usage = String(space.usage)
  el.dataset.quota = String(space.quota)
  el.dataset.persisted = String(space.persisted)
  el.textContent = `This page uses ${formatBytes(space.usage)} of the ${formatBytes(space.quota)} the browser allows it. ` +
    (space.persisted
      ? 'Storage is persistent: the browser will not evict recordings to free space.'
      : 'Storage is not persistent: under storage pressure the browser may evict what is here (installing the page usually makes it persistent).')
}

/** Applies the retention to completed recordings, and offers old failed ones for clean-up. */
async function tidy () {
  for (const rec of expiredLocalCopies(recordings, retention, Date.now())) {
    await removeLocalAudio(rec.id)
    await changed(rec.id, { localCopy: false })
  }
  const stale = staleFailures(recordings, Date.now())
  $('cleanup').hidden = stale.length === 0
  $('cleanup').dataset.count = String(stale.length)
  $('cleanup-text').textContent = `${stale.length} failed recording${stale.length === 1 ? '' : 's'} older than a week ` +
    `(${formatBytes(stale.reduce((sum, rec) => sum + (rec.size || 0), 0))}): delete them here and on the server?`
  showSpace()
}

async function cleanUp () {
  for (const rec of staleFailures(recordings, Date.now())) await remove(rec.id)
  tidy()
}

// -- recording ------------------------------------------------------------------------------------

let timer = null
const recorder = new Recorder({
  newId,
  saved: rec => {
    added(rec, `${rec.name} saved in this browser`)
    $('record').disabled = false
    $('record').focus()
  },
  failed: message => announce(`Recording stopped: ${message}`)
})

async function startRecording () {
  requestPersistence().then(showSpace) // on a click: some browsers only grant it then
  const started = await recorder.start()
  $('record').disabled = true
  $('stop').disabled = false
  $('stop').focus()
  announce('Recording')
  timer = setInterval(() => {
    const s = Math.floor((Date.now() - started) / 1000)
    $('timer').textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
  }, 250)
}

function stopRecording () {
  clearInterval(timer)
  $('stop').disabled = true
  recorder.stop()
}

// -- actions --------------------------------------------------------------------------------------

async function retry (id) {
  const rec = recordings.find(r => r.id === id)
  if (!rec) return
  if (rec.uploadError) {
    await changed(id, { status: rec.uploadUrl ? 'uploading' : 'recorded', uploadError: null })
    queue.kick()
  } else if (rec.serverError && rec.uploadUrl && rec.serverError.startsWith('the server no longer')) {
    await forgetUploadUrls(id)
    await changed(id, { status: 'recorded', uploadUrl: null, serverError: null })
    queue.kick()
  } else {
    await server.retryProcessing() // the server's failed processing: another round for this user's failed ones
    await changed(id, { status: 'processing', serverError: null })
    watcher.kick()
  }
}

async function remove (id) {
  const rec = recordings.find(r => r.id === id)
  if (!rec) return
  try {
    await queue.cancel(id)
    if (rec.uploadUrl) await server.deleteRecording(serverIdOf(rec.uploadUrl))
  } catch (err) {
    // Deleting here only would leave the server's copy behind with nothing pointing at it.
    announce(`${rec.name} was not deleted: ${err.message}. Try again when the server is reachable.`)
    await changed(id, { lastAttemptError: `delete failed: ${err.message}` })
    return
  }
  view.forget(id)
  await removeRecording(id)
  recordings = recordings.filter(r => r.id !== id)
  announce(`${rec.name} deleted`)
  render()
  showSpace()
  queue.kick()
}

// -- start ----------------------------------------------------------------------------------------

async function loadConfig () {
  try {
    await server.loadConfig() // from the service worker's cache when the server is away
  } catch (err) {
    // No server and no cached config (the service worker is not installed yet): the queue waits.
    server.config = { tus_endpoint: '../files/', api_prefix: '../api', auth: true }
  }
  $('token-hint').textContent = server.config.auth ? '(required: this server has auth on)' : '(not needed: auth is off)'
}

function setUpControls () {
  tokenInput.value = token.value
  tokenInput.addEventListener('change', () => {
    token.set(tokenInput.value)
    $('signin').hidden = true
    queue.kick()
    watcher.kick()
  })
  $('record').addEventListener('click', () => startRecording().catch(err => announce(`Cannot record: ${err.message}`)))
  $('stop').addEventListener('click', stopRecording)
  $('file').addEventListener('change', async event => {
    for (const file of event.target.files) await keep(file, file.name, 'file')
    event.target.value = ''
  })
  const select = $('retention')
  for (const [ms, label] of RETENTION_CHOICES) select.append(new Option(label, String(ms), false, ms === retention))
  select.addEventListener('change', () => {
    retention = select.value === 'null' ? null : Number(select.value)
    saveRetention(retention)
    tidy()
  })
  $('cleanup-button').addEventListener('click', cleanUp)
  addEventListener('online', render)
  addEventListener('offline', render)
}

async function main () {
  setUpControls()
  if ('serviceWorker' in navigator) {
    // Relative: the worker's scope is this page's directory, wherever a proxy mounts it.
    navigator.serviceWorker.register('sw.js').catch(err => console.warn('no offline copy of the page', err))
  }
  await loadConfig()
  recordings = await allRecordings()
  for (const rec of await recoverTakes()) {
    recordings.push(rec)
    announce(`${rec.name} was interrupted; what was recorded is kept`)
  }
  render()
  if (server.config.auth && !token.get()) signIn()
  await tidy()
  requestPersistence().then(showSpace, () => {})
  queue.kick()
  watcher.kick()
  document.body.dataset.ready = 'true' // for scripts and tests: the list reflects IndexedDB now
}

main()
