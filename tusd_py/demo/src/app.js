// The recorder page: capture or pick audio, keep it in IndexedDB, upload it when the server is there.
import { Server, serverIdOf } from './api.js'
import { ProcessingWatcher } from './processing.js'
import { UploadQueue, WAITING, forgetUploadUrls } from './queue.js'
import { addRecording, allRecordings, audioOf, removeRecording, updateRecording } from './store.js'
import { RecordingsView } from './view.js'

const TOKEN_KEY = 'tusd-py-demo:token'
const CONFIG_KEY = 'tusd-py-demo:config'
// Opus first: what the server's analysis knows best and what voice needs. The browser picks the container.
const MIME_TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/ogg']

const $ = id => document.getElementById(id)
const tokenInput = $('token')
let recordings = []
const server = new Server(() => tokenInput.value)

function newId () {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}

function announce (text) {
  $('announcer').textContent = text
}

// -- state: IndexedDB is the truth, `recordings` its copy in memory --------------------------------

async function changed (id, changes) {
  if (id !== null && changes) {
    const updated = await updateRecording(id, changes)
    const index = recordings.findIndex(rec => rec.id === id)
    if (updated && index >= 0) recordings[index] = updated
    if (changes.status && updated) announce(`${updated.name}: ${changes.status}`)
    if (changes.status === 'uploaded') watcher.kick()
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
 * Where the player reads the audio from. Always the copy in this browser for now: it is there even
 * offline. A signed download URL from the server can be returned here once the server offers one.
 */
async function playbackUrl (rec) {
  const blob = await audioOf(rec.id)
  return blob ? URL.createObjectURL(blob) : ''
}

async function keep (blob, name, source) {
  const rec = {
    id: newId(),
    name,
    type: blob.type,
    size: blob.size,
    source,
    createdAt: Date.now(),
    status: 'recorded',
    uploadUrl: null
  }
  await addRecording(rec, blob) // before any network request: the recording is safe from here on
  recordings.push(rec)
  announce(`${name} saved in this browser`)
  render()
  queue.kick()
}

// -- recording ------------------------------------------------------------------------------------

let recorder = null
let timer = null

async function startRecording () {
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    announce('Recording needs a secure page (https or localhost) and a browser with MediaRecorder.')
    return
  }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true })
  const mimeType = MIME_TYPES.find(type => MediaRecorder.isTypeSupported(type))
  const chunks = []
  const started = Date.now()
  recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {})
  recorder.ondataavailable = event => { if (event.data.size) chunks.push(event.data) }
  recorder.onstop = async () => {
    stream.getTracks().forEach(track => track.stop())
    const type = recorder.mimeType || mimeType || 'audio/webm'
    recorder = null
    const extension = type.includes('ogg') ? 'ogg' : 'webm'
    const stamp = new Date(started).toISOString().slice(0, 19).replace('T', ' ')
    await keep(new Blob(chunks, { type }), `Recording ${stamp}.${extension}`, 'microphone')
    $('record').disabled = false
    $('record').focus()
  }
  recorder.start(1000)
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
  if (recorder && recorder.state !== 'inactive') recorder.stop()
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
  queue.kick()
}

// -- start ----------------------------------------------------------------------------------------

async function loadConfig () {
  try {
    const config = await server.loadConfig()
    localStorage.setItem(CONFIG_KEY, JSON.stringify(config))
  } catch (err) {
    // The server is away: the last config seen lets the queue start once it is back.
    server.config = JSON.parse(localStorage.getItem(CONFIG_KEY) || 'null') || { tus_endpoint: '/files/', api_prefix: '/api', auth: false }
  }
  $('token-hint').textContent = server.config.auth ? '(required: this server has auth on)' : '(not needed: auth is off)'
}

async function main () {
  tokenInput.value = localStorage.getItem(TOKEN_KEY) || ''
  tokenInput.addEventListener('change', () => {
    localStorage.setItem(TOKEN_KEY, tokenInput.value.trim())
    for (const rec of recordings) if (rec.uploadError && rec.uploadError.startsWith('HTTP 401')) retry(rec.id)
    queue.kick()
  })
  $('record').addEventListener('click', () => startRecording().catch(err => announce(`Cannot record: ${err.message}`)))
  $('stop').addEventListener('click', stopRecording)
  $('file').addEventListener('change', async event => {
    for (const file of event.target.files) await keep(file, file.name, 'file')
    event.target.value = ''
  })
  addEventListener('online', render)
  addEventListener('offline', render)
  await loadConfig()
  recordings = await allRecordings()
  render()
  queue.kick()
  watcher.kick()
}

main()
