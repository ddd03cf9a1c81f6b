// Capture in slices: MediaRecorder hands over the audio every SLICE_MS and each slice is written to
// IndexedDB as it arrives, so a killed tab or a crashed browser loses at most the slice in flight.
//
// What a cut-short take is: the slices written so far, concatenated, and that is a playable file.
// WebM/Opus (Chromium's choice): the first slice holds the header and the first blocks, each later
// one whole blocks up to its time, so the slices so far are a WebM of unknown length that plays to
// the end of the last slice (no Duration element, as in any MediaRecorder WebM; players and the
// server's analysis read it from the last block). MP4 (audio/mp4, Chromium and Safari): the first
// slice is the init segment only (ftyp+moov, no audio), each later one whole moof+mdat fragments,
// so the slices so far are a fragmented MP4 whose length is that of its fragments; a crash before
// the second slice keeps no audio.
import { appendSlice, beginTake, finishTake, unfinishedTakes } from './store.js'

export const SLICE_MS = 2000
// Opus first: what the server's analysis knows best and what voice needs. The browser picks the container.
const MIME_TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4;codecs=opus', 'audio/webm', 'audio/ogg', 'audio/mp4']

function extensionOf (type) {
  if (type.includes('ogg')) return 'ogg'
  if (type.includes('mp4')) return 'm4a'
  return 'webm'
}

const lockName = id => `tusd-py-demo:take:${id}`

/** The recording a take becomes: a normal stop, or a take recovered after a crash. */
function recordingOf (take, lastSliceAt, recovered) {
  return {
    id: take.id,
    name: take.name,
    type: take.type,
    source: 'microphone',
    createdAt: take.startedAt,
    status: 'recorded',
    uploadUrl: null,
    recovered,
    keptMs: lastSliceAt - take.startedAt
  }
}

export class Recorder {
  constructor ({ newId, saved, failed }) {
    this.newId = newId
    this.saved = saved // (rec) => the take is a recording now
    this.failed = failed // (message) => recording stopped on an error
    this.recorder = null
  }

  get recording () {
    return this.recorder !== null
  }

  async start () {
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      throw new Error('recording needs a secure page (https or localhost) and a browser with MediaRecorder')
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true })
    const mimeType = MIME_TYPES.find(type => MediaRecorder.isTypeSupported(type))
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {})
    const type = recorder.mimeType || mimeType || 'audio/webm'
    const startedAt = Date.now()
    const stamp = new Date(startedAt).toISOString().slice(0, 19).replace('T', ' ')
    const take = { id: this.newId(), name: `Recording ${stamp}.${extensionOf(type)}`, type, startedAt }
    // Held while recording, taken before the take exists: the recovery in another tab leaves it alone.
    const release = await new Promise(resolve => {
      navigator.locks.request(lockName(take.id), () => new Promise(resolve))
    })
    await beginTake(take)
    this.recorder = recorder
    let seq = 0
    let writes = Promise.resolve() // one slice after the other, in order
    recorder.ondataavailable = event => {
      if (!event.data.size) return
      const at = Date.now()
      const n = seq++
      writes = writes.then(() => appendSlice(take.id, n, event.data, at)).catch(err => {
        this.failed(`a slice could not be saved (${err.message}); recording stopped`)
        if (recorder.state !== 'inactive') recorder.stop()
      })
    }
    recorder.onstop = async () => {
      stream.getTracks().forEach(track => track.stop())
      this.recorder = null
      await writes
      const rec = await finishTake(take.id, (t, lastAt) => ({ ...recordingOf(t, lastAt, false), keptMs: Date.now() - startedAt }))
      release()
      if (rec) this.saved(rec)
    }
    recorder.start(SLICE_MS)
    return startedAt
  }

  stop () {
    if (this.recorder && this.recorder.state !== 'inactive') this.recorder.stop()
  }
}

/** Closes every take that a crash or a killed tab left open (not one another tab is recording). */
export async function recoverTakes () {
  const recovered = []
  for (const take of await unfinishedTakes()) {
    const rec = await navigator.locks.request(lockName(take.id), { ifAvailable: true }, lock =>
      lock ? finishTake(take.id, (t, lastAt) => recordingOf(t, lastAt, true)) : null)
    if (rec) recovered.push(rec)
  }
  return recovered
}
