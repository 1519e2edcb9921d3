// A real JavaScript Yjs peer (yjs + y-websocket), driven line by line from Python.
//
// Reads one JSON command per line on stdin and answers each with exactly one JSON line on
// stdout: {"id": <the command's id>, "ok": true, ...} or {"id": ..., "ok": false, "error": "..."}.
// Unsolicited events are never written, so the Python side can simply read one line per command.
//
// Commands:
//   connect    {url, room, params?, wait?} WebsocketProvider (disableBc, `ws` as WebSocket);
//                                           answers once the first sync completed (unless
//                                           wait is false: then at once)
//   synced     {ms?}                       answers once the provider is synced
//   closes     {}                          what the provider saw of its sockets closing: every
//                                           close code, the terminal close ('closed' event) if
//                                           any, how many sockets it opened, whether it will
//                                           reconnect (shouldConnect) and whether it is synced
//   disconnect {}                          provider.destroy() (awareness removal is sent)
//   edit       {ops: [...]}                all ops in ONE transaction (see applyOp)
//   apply      {update}                    apply a base64 update (no network needed)
//   updates    {}                          base64 updates this doc emitted since the last call
//   state      {schema, sv?}               state vector, full update, content as JSON, texts as
//                                           base64 UTF-8, and the diff against `sv` if given
//   awareness  {state}                     set the local awareness state (null clears it)
//   peers      {}                          awareness states of the other clients
//   quit       {}
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const doc = new Y.Doc()
let provider = null
let emitted = []
doc.on('update', update => { emitted.push(Buffer.from(update).toString('base64')) })

const b64 = bytes => Buffer.from(bytes).toString('base64')
const fromB64 = text => new Uint8Array(Buffer.from(text, 'base64'))

// Follows `path` ([rootMapName, key, key, ...]) down through nested Y.Maps.
const mapAt = path => {
  let map = doc.getMap(path[0])
  for (const key of path.slice(1)) {
    const next = map.get(key)
    if (!(next instanceof Y.Map)) throw new Error(`no nested map at ${JSON.stringify(path)}`)
    map = next
  }
  return map
}

const applyOp = op => {
  switch (op.op) {
    case 'text_insert': doc.getText(op.text).insert(op.index, op.value); break
    case 'text_delete': doc.getText(op.text).delete(op.index, op.length); break
    case 'map_set': mapAt(op.path).set(op.key, op.value); break
    case 'map_set_map': mapAt(op.path).set(op.key, new Y.Map()); break
    case 'map_delete': mapAt(op.path).delete(op.key); break
    case 'array_insert': doc.getArray(op.array).insert(op.index, op.values); break
    case 'array_delete': doc.getArray(op.array).delete(op.index, op.length); break
    default: throw new Error(`unknown op ${JSON.stringify(op.op)}`)
  }
}

const waitSynced = (timeout = 10000) => new Promise((resolve, reject) => {
  if (provider.synced) return resolve()
  const timer = setTimeout(() => reject(new Error(`not synced within ${timeout} ms`)), timeout)
  const onSync = synced => {
    if (synced) { clearTimeout(timer); provider.off('sync', onSync); resolve() }
  }
  provider.on('sync', onSync)
})

// What the provider saw of its connections (see the `closes` command).
let seen = { codes: [], terminal: null, attempts: 0 }

const handlers = {
  async connect (cmd) {
    seen = { codes: [], terminal: null, attempts: 0 }
    provider = new WebsocketProvider(cmd.url, cmd.room, doc, {
      WebSocketPolyfill: WebSocket, disableBc: true, params: cmd.params || {}, connect: false
    })
    provider.on('status', ({ status }) => { if (status === 'connecting') seen.attempts++ })
    provider.on('connection-close', event => { seen.codes.push(event ? event.code : null) })
    provider.on('closed', event => { seen.terminal = event.code })
    provider.awareness.setLocalState(null)
    provider.connect() // after the listeners, so they see the first attempt too
    if (cmd.wait !== false) await waitSynced()
    return { clientID: doc.clientID }
  },
  async synced (cmd) {
    if (!provider) throw new Error('not connected')
    await waitSynced(cmd.ms || 10000)
    return {}
  },
  async closes () {
    if (!provider) throw new Error('not connected')
    return { ...seen, shouldConnect: provider.shouldConnect, synced: provider.synced }
  },
  async disconnect () {
    if (provider) { provider.destroy(); provider = null }
    // let the socket flush the awareness removal before answering
    await new Promise(resolve => setTimeout(resolve, 100))
    return {}
  },
  async edit (cmd) {
    doc.transact(() => { for (const op of cmd.ops) applyOp(op) })
    return {}
  },
  async apply (cmd) {
    Y.applyUpdate(doc, fromB64(cmd.update), 'python')
    return {}
  },
  async updates () {
    const out = emitted
    emitted = []
    return { updates: out }
  },
  async state (cmd) {
    const schema = cmd.schema || {}
    const json = {}
    const texts = {}
    for (const name of schema.text || []) {
      json[name] = doc.getText(name).toString()
      texts[name] = b64(Buffer.from(json[name], 'utf8'))
    }
    for (const name of schema.map || []) json[name] = doc.getMap(name).toJSON()
    for (const name of schema.array || []) json[name] = doc.getArray(name).toJSON()
    const sv = Y.decodeStateVector(Y.encodeStateVector(doc))
    const result = {
      sv: b64(Y.encodeStateVector(doc)),
      clocks: Object.fromEntries([...sv.entries()].map(([k, v]) => [String(k), v])),
      update: b64(Y.encodeStateAsUpdate(doc)),
      json,
      texts
    }
    if (cmd.sv) result.diff = b64(Y.encodeStateAsUpdate(doc, fromB64(cmd.sv)))
    return result
  },
  async awareness (cmd) {
    if (!provider) throw new Error('not connected')
    provider.awareness.setLocalState(cmd.state)
    return {}
  },
  async peers () {
    if (!provider) throw new Error('not connected')
    const states = {}
    provider.awareness.getStates().forEach((state, client) => {
      if (client !== doc.clientID) states[String(client)] = state
    })
    return { states }
  },
  async quit () {
    if (provider) provider.destroy()
    setTimeout(() => process.exit(0), 50)
    return {}
  }
}

const input = readline.createInterface({ input: process.stdin })
// Commands run strictly one after another, in the order they arrived.
let chain = Promise.resolve()
input.on('line', line => {
  if (!line.trim()) return
  chain = chain.then(async () => {
    let cmd = {}
    try {
      cmd = JSON.parse(line)
      const handler = handlers[cmd.cmd]
      if (!handler) throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
      const result = await handler(cmd)
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, ...result }) + '\n')
    } catch (err) {
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: false, error: String(err && err.stack ? err.stack : err) }) + '\n')
    }
  })
})
input.on('close', () => { if (provider) provider.destroy(); setTimeout(() => process.exit(0), 50) })
