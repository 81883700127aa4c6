import cjs from './express.js'

export const { phantomToken, DEFAULT_REVOCATION_PATH, DEFAULT_METRICS_PATH } = cjs
export default phantomToken
