import cjs from './fastify.js'

export const phantomEdge = cjs
export default cjs
