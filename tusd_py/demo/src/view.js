// The recordings list. Each item is built once and updated in place, so a playing <audio> is not
// reset by a progress tick. The data-* attributes are the page's contract for tests and scripts.

const STATUS_TEXT = {
  recorded: 'Recorded: waiting to upload',
  uploading: 'Uploading',
  uploaded: 'Uploaded: waiting for processing',
  processing: 'Processing',
  completed: 'Completed',
  failed: 'Failed'
}

function el (tag, attrs = {}, text = null) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value)
  if (text !== null) node.textContent = text
  return node
}

export function formatBytes (n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`
}

function formatSeconds (s) {
  if (s === null || s === undefined) return 'unknown'
  return s < 60 ? `${s.toFixed(2)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
}

/** The analysis the server returned, as label/value pairs (only what it knows). */
export function analysisFacts (analysis) {
  if (!analysis) return []
  const facts = [['Format', [analysis.format, analysis.codec].filter(Boolean).join(' / ')]]
  facts.push(['Duration', formatSeconds(analysis.duration_seconds)])
  if (analysis.sample_rate) facts.push(['Sample rate', `${analysis.sample_rate} Hz`])
  if (analysis.channels) facts.push(['Channels', String(analysis.channels)])
  if (analysis.bitrate_bps) facts.push(['Bitrate', `${Math.round(analysis.bitrate_bps / 1000)} kbit/s`])
  const advice = analysis.recommendation
  if (advice) {
    const saving = advice.action === 'transcode' && advice.bytes_saved ? ` (saves ${formatBytes(advice.bytes_saved)})` : ''
    facts.push(['Compression advice', `${advice.action}: ${advice.reason}${saving}`])
  }
  return facts
}

export class RecordingsView {
  constructor ({ list, empty, onRetry, onDelete, playbackUrl }) {
    this.list = list
    this.empty = empty
    this.onRetry = onRetry
    this.onDelete = onDelete
    this.playbackUrl = playbackUrl
    this.items = new Map() // id -> { root, parts }
  }

  render (recordings, { progress, retryAt }) {
    const seen = new Set()
    for (const rec of recordings) {
      seen.add(rec.id)
      let item = this.items.get(rec.id)
      if (!item) {
        item = this.build(rec)
        this.items.set(rec.id, item)
        this.list.append(item.root)
      }
      this.update(item, rec, progress.get(rec.id), retryAt)
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.root.remove()
        this.items.delete(id)
      }
    }
    this.empty.hidden = recordings.length > 0
  }

  build (rec) {
    const root = el('li', { class: 'recording', 'data-testid': 'recording', 'data-id': rec.id })
    const titleId = `title-${rec.id}`
    root.setAttribute('aria-labelledby', titleId)
    const header = el('header')
    const title = el('h3', { id: titleId }, rec.name)
    const badge = el('span', { class: 'badge', 'data-testid': 'status' })
    header.append(title, badge)
    const meta = el('p', { class: 'note' })
    const progress = el('progress', { max: String(rec.size || 1), value: '0', 'aria-label': `Upload of ${rec.name}` })
    const note = el('p', { class: 'note', 'data-testid': 'note' })
    const audio = el('audio', { controls: '', preload: 'metadata', 'aria-label': `Play ${rec.name}` })
    audio.dataset.source = rec.localCopy === false ? 'server' : 'browser'
    const facts = el('dl', { class: 'facts', 'data-testid': 'analysis' })
    const retry = el('button', { type: 'button', 'data-testid': 'retry' }, 'Retry')
    const remove = el('button', { type: 'button', 'data-testid': 'delete' }, 'Delete')
    retry.setAttribute('aria-label', `Retry ${rec.name}`)
    remove.setAttribute('aria-label', `Delete ${rec.name}`)
    retry.addEventListener('click', () => this.onRetry(rec.id))
    remove.addEventListener('click', () => this.onDelete(rec.id))
    const actions = el('div', { class: 'actions' })
    actions.append(retry, remove)
    root.append(header, meta, progress, note, audio, facts, actions)
    meta.textContent = `${formatBytes(rec.size)} · ${rec.type || 'unknown type'} · ${new Date(rec.createdAt).toLocaleString()}`
    this.playbackUrl(rec).then(url => { audio.src = url }, () => {})
    return { root, parts: { badge, progress, note, facts, retry, audio } }
  }

  update ({ root, parts }, rec, sent, retryAt) {
    root.dataset.status = rec.status
    root.dataset.local = rec.localCopy === false ? 'no' : 'yes'
    if (rec.localCopy === false && parts.audio.dataset.source !== 'server') {
      parts.audio.dataset.source = 'server'
      // The local copy went while this item was shown: play the server's copy from now on.
      if (parts.audio.src.startsWith('blob:')) URL.revokeObjectURL(parts.audio.src)
      parts.audio.removeAttribute('src')
      this.playbackUrl(rec).then(url => { if (url) parts.audio.src = url }, () => {})
    }
    if (rec.recovered) root.dataset.recovered = String(rec.keptMs)
    if (rec.uploadUrl) root.dataset.uploadUrl = rec.uploadUrl
    else delete root.dataset.uploadUrl
    parts.badge.dataset.status = rec.status
    parts.badge.textContent = STATUS_TEXT[rec.status] || rec.status
    const onServer = rec.status !== 'recorded' && rec.status !== 'uploading'
    const bytes = onServer ? rec.size : Math.min(sent || 0, rec.size)
    parts.progress.value = bytes
    parts.progress.setAttribute('aria-valuetext', `${formatBytes(bytes)} of ${formatBytes(rec.size)} on the server`)
    let note = ''
    let isError = false
    if (rec.status === 'failed') {
      note = rec.uploadError || rec.serverError || 'failed'
      isError = true
    } else if (rec.status === 'recorded' || rec.status === 'uploading') {
      note = rec.lastAttemptError ? `Waiting: ${rec.lastAttemptError}.` : ''
      if (retryAt) {
        root.dataset.retryAt = String(retryAt)
        note += ` Next try at ${new Date(retryAt).toLocaleTimeString()}, or as soon as the browser is online.`
      }
    }
    if (!retryAt) delete root.dataset.retryAt
    if (rec.recovered) {
      note = `Recovered after an interruption: ${formatSeconds(rec.keptMs / 1000)} kept (the last seconds before it may be missing). ${note}`
    }
    if (rec.localCopy === false) note = `${note} Only on the server now: the copy in this browser was removed after it completed.`
    parts.note.textContent = note.trim()
    parts.note.classList.toggle('error', isError)
    parts.note.hidden = !note
    parts.retry.hidden = rec.status !== 'failed'
    const facts = analysisFacts(rec.analysis)
    if (rec.sha256) facts.push(['SHA-256', rec.sha256])
    parts.facts.replaceChildren(...facts.flatMap(([label, value]) => [el('dt', {}, label), el('dd', {}, value)]))
    parts.facts.hidden = facts.length === 0
  }

  forget (id) {
    const item = this.items.get(id)
    if (item && item.parts.audio.src.startsWith('blob:')) URL.revokeObjectURL(item.parts.audio.src)
  }
}
