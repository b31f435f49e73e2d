'use strict';
// Benchmark app: loads most core modules, uses them a little, then serves
// HTTP. Prints 'node app ready ...' once it listens.
const assert = require('assert');
const { Buffer } = require('buffer');
const childProcess = require('child_process');
const crypto = require('crypto');
const dns = require('dns');
const events = require('events');
const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');
const querystring = require('querystring');
const readline = require('readline');
const stream = require('stream');
const { StringDecoder } = require('string_decoder');
const tls = require('tls');
const url = require('url');
const util = require('util');
const vm = require('vm');
const { Worker, isMainThread } = require('worker_threads');
const zlib = require('zlib');

const PORT = Number(process.env.PORT || 18091);
const t0 = performance.now();

function warmUp() {
  const items = Array.from({ length: 500 }, (_, i) => ({ id: i, name: crypto.randomBytes(6).toString('hex') }));
  const json = JSON.stringify(items);
  const gz = zlib.gzipSync(Buffer.from(json));
  assert.strictEqual(zlib.gunzipSync(gz).toString(), json);
  const digest = crypto.createHash('sha256').update(gz).digest('hex');
  const ctx = vm.createContext({ x: 2 });
  const vmResult = vm.runInContext('x * 21', ctx);
  const dec = new StringDecoder('utf8');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'app-'));
  fs.writeFileSync(path.join(tmp, 'items.json'), json);
  const size = fs.statSync(path.join(tmp, 'items.json')).size;
  fs.rmSync(tmp, { recursive: true });
  return {
    digest, vmResult, size, cpus: os.cpus().length,
    q: querystring.stringify({ a: 1 }), u: new url.URL('http://x/y?z=1').searchParams.get('z'),
    d: dec.write(Buffer.from('ok')), inspect: util.inspect({ a: [1, 2] }),
    ev: events.EventEmitter.defaultMaxListeners, tls: tls.DEFAULT_MIN_VERSION,
    types: [typeof childProcess.spawn, typeof dns.lookup, typeof https.request, typeof net.connect,
      typeof readline.createInterface, typeof stream.pipeline, typeof Worker, isMainThread],
  };
}

const state = warmUp();
const server = http.createServer((req, res) => {
  const body = JSON.stringify({ path: req.url, state });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(PORT, '127.0.0.1', () => {
  console.log(`node app ready on :${PORT} (warm-up ${((performance.now() - t0) / 1000).toFixed(3)} s)`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
