// Command-line arguments of run-scenario.mjs: flags, or one --json object with the same keys.

export function parseArgs(argv) {
  const opts = { headers: {} }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${arg}`)
      return argv[++i]
    }
    switch (arg) {
      case '--json':
        Object.assign(opts, JSON.parse(next()))
        break
      case '--scenario':
        opts.scenario = next()
        break
      case '--endpoint':
        opts.endpoint = next()
        break
      case '--file':
        opts.file = next()
        break
      case '--size':
        opts.size = Number(next())
        break
      case '--header': {
        const raw = next()
        const colon = raw.indexOf(':')
        if (colon <= 0) throw new Error(`bad --header ${raw}, expected 'Name: value'`)
        opts.headers[raw.slice(0, colon).trim()] = raw.slice(colon + 1).trim()
        break
      }
      case '--storage':
        opts.storage = next()
        break
      case '--chunk-size':
        opts.chunkSize = Number(next())
        break
      case '--timeout-ms':
        opts.timeoutMs = Number(next())
        break
      case '--metadata':
        opts.metadata = JSON.parse(next())
        break
      default:
        throw new Error(`unknown argument ${arg}`)
    }
  }
  if (!opts.scenario) throw new Error('--scenario is required')
  if (!opts.endpoint) throw new Error('--endpoint is required')
  if (!opts.file && !(opts.size >= 0)) throw new Error('--file or --size is required')
  return opts
}
