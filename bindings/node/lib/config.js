'use strict'
const fs = require('node:fs')
const native = require('./native.js')
const { ConfigError, translate } = require('./errors.js')

function wrap(fn) {
  try {
    return fn()
  } catch (e) {
    throw translate(e)
  }
}

/**
 * A checked native `Config` from: a `Config`; a plain object of the TOML's shape; TOML text; or a
 * path to a `.toml` (or `.json`) file. `*_env` secrets are read from `process.env`.
 */
function loadConfig(source) {
  if (source instanceof native.Config) return source
  if (source instanceof URL) source = source.pathname
  if (source && typeof source === 'object') {
    return wrap(() => native.Config.fromJson(JSON.stringify(source)))
  }
  if (typeof source !== 'string') {
    throw new ConfigError('(config)', 'expected a TOML path, TOML text, an object or a Config')
  }
  const isText = source.includes('\n') || source.includes('=')
  if (isText) return wrap(() => native.Config.fromToml(source))
  let text
  try {
    text = fs.readFileSync(source, 'utf8')
  } catch (e) {
    throw new ConfigError('(file)', `cannot read ${source}: ${e.code || e.message}`)
  }
  if (source.endsWith('.json')) return wrap(() => native.Config.fromJson(text))
  return wrap(() => native.Config.fromToml(text))
}

/** The `[middleware]` section of a config (host keys, not read by the core), or `{}`. */
function middlewareSection(config) {
  const json = config.middlewareJson
  if (!json) return {}
  const v = JSON.parse(json)
  return v && typeof v === 'object' ? v : {}
}

module.exports = { loadConfig, middlewareSection }
