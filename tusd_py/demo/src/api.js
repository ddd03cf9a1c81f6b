// The server: its page config and the Recordings API, with the user's token when there is one.

export class ApiError extends Error {
  constructor (status, message) {
    super(message)
    this.status = status
  }
}

export class Server {
  constructor (tokenSource) {
    this.token = tokenSource
    this.config = null
  }

  headers () {
    const token = this.token().trim()
    return token ? { Authorization: `Bearer ${token}` } : {}
  }

  async loadConfig () {
    this.config = await this.json('config.json', {}, false)
    return this.config
  }

  get endpoint () {
    return new URL(this.config.tus_endpoint, location.href).href
  }

  recordingUrl (serverId) {
    return new URL(`${this.config.api_prefix}/recordings/${encodeURIComponent(serverId)}`, location.href).href
  }

  async json (url, init = {}, auth = true) {
    const response = await fetch(url, { ...init, headers: { ...(auth ? this.headers() : {}), ...(init.headers || {}) } })
    if (!response.ok) {
      // The server's reasons are plain text ending in a newline.
      throw new ApiError(response.status, (await response.text()).trim() || `HTTP ${response.status}`)
    }
    return response.status === 204 ? null : response.json()
  }

  getRecording (serverId) {
    return this.json(this.recordingUrl(serverId))
  }

  async deleteRecording (serverId) {
    try {
      await this.json(this.recordingUrl(serverId), { method: 'DELETE' })
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err // already gone is fine
    }
  }

  /** Puts this user's failed recordings back in the processing queue. */
  retryProcessing () {
    return this.json(new URL(`${this.config.api_prefix}/sync`, location.href).href, { method: 'POST' })
  }
}

/** The server's id of an upload: the last segment of its tus URL. */
export function serverIdOf (uploadUrl) {
  return decodeURIComponent(new URL(uploadUrl).pathname.split('/').filter(Boolean).pop())
}
