// bridge.mjs - the MCP Streamable HTTP transport in front of `mstack mcp`
// (stdio), for the official conformance suite, which speaks only HTTP.
//
//   node bridge.mjs <mstack binary> <project root> [port [mstack mcp args...]]
//
// Listens on 127.0.0.1 (port 0: any free one) and prints "listening <port>"
// on stdout once it accepts connections. Test code only: not a product.
//
// Design
// - One `mstack mcp --root <root>` child per session. An `initialize` POST
//   without Mcp-Session-Id starts a child and a session (a random id, sent
//   back in the Mcp-Session-Id header); every later request must carry it
//   (missing: 400, unknown or ended: 404). DELETE ends the session (the
//   child's stdin is closed; it exits on end of input).
// - POST of a JSON-RPC request: the line goes to the child's stdin and the
//   answer is an SSE stream (text/event-stream) when the client accepts it,
//   else application/json. The stream opens with a priming event (an id, a
//   retry field, empty data), carries what the child sends for the request
//   (notifications/progress with its progressToken; other notifications and
//   server-to-client requests go to the most recent open request stream),
//   and ends after the response. The initialize answer is plain JSON.
//   POST of a notification or a response: forwarded, 202 with no body.
// - GET with Accept: text/event-stream opens a stream for what the child
//   sends outside any request (list changes, resource updates); a session may
//   have several (a reconnect with Last-Event-ID opens a new one): each
//   message goes to the newest open one. Nothing is replayed after a
//   reconnect (the spec makes that optional).
// - Host and Origin must name a loopback host (localhost, 127.0.0.1, [::1]):
//   anything else is 403 (DNS rebinding). An MCP-Protocol-Version header
//   must be a revision the server knows (400 otherwise).
// - Ids: the client's ids are forwarded as they are; two requests with the
//   same id in flight in one session are refused with 409 (the child could not
//   tell their answers apart).
// - 2026-07-28 (stateless, no session): a POST without Mcp-Session-Id whose
//   request carries params._meta["io.modelcontextprotocol/protocolVersion"],
//   or whose MCP-Protocol-Version header names 2026-07-28, goes to one shared
//   `mstack mcp` child (class Stateless). The bridge does what the spec gives
//   the HTTP layer (SEP-2243, SEP-2575): the MCP-Protocol-Version header must
//   be present and equal the _meta version, Mcp-Method must equal the body's
//   method, Mcp-Name must equal params.name (tools/call, prompts/get) or
//   params.uri (resources/read); a mismatch or a missing header is -32020 with
//   HTTP 400, a modern header on a request without the _meta version is
//   -32602 with 400. Ids are renamed to bridge ids in the child (clients
//   reuse ids across requests) and back in what comes out, also in
//   _meta["io.modelcontextprotocol/subscriptionId"]. The answer is plain JSON
//   when the child's first message for the request is its response (with the
//   HTTP status the spec gives the error: -32601 404; -32022, -32021, and
//   -32602 for the _meta envelope (error.data.envelope) 400), else an SSE
//   stream. The client closing the stream before the answer cancels the
//   request (notifications/cancelled to the child; for subscriptions/listen
//   that ends the subscription).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import readline from 'node:readline';

const [mstack, root, portArg, ...extraArgs] = process.argv.slice(2);
if (!mstack || !root) {
    process.stderr.write('usage: node bridge.mjs <mstack binary> <project root> [port [mstack mcp args...]]\n');
    process.exit(2);
}
const VERSIONS = new Set(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']);
const MODERN = '2026-07-28';
const PV_KEY = 'io.modelcontextprotocol/protocolVersion';
const SUB_KEY = 'io.modelcontextprotocol/subscriptionId';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
const MAX_BODY = 4 * 1024 * 1024;
const sessions = new Map();

function hostOf(value) {
    // "host[:port]" or "[v6]:port" -> host, lower case
    const v = value.trim().toLowerCase();
    if (v.startsWith('[')) return v.slice(0, v.indexOf(']') + 1);
    const colon = v.indexOf(':');
    return colon < 0 ? v : v.slice(0, colon);
}

function loopbackHeaders(req) {
    if (!req.headers.host || !LOOPBACK.has(hostOf(req.headers.host))) return false;
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    try {
        return LOOPBACK.has(new URL(origin).hostname.toLowerCase());
    } catch {
        return false;
    }
}

function plain(res, status, text, headers = {}) {
    res.writeHead(status, { 'Content-Type': 'text/plain', ...headers });
    res.end(text + '\n');
}

function rpcError(res, status, code, message, id = null) {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }));
}

function rpcErrorData(res, status, code, message, data, id = null) {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, data } }));
}

function accepts(req, type) {
    return (req.headers.accept || '').split(',').some((p) => {
        const t = p.split(';')[0].trim();
        return t === type || t === '*/*';
    });
}

class Stream {
    // One SSE response: numbered events, so Last-Event-ID is meaningful.
    constructor(session, res) {
        this.session = session;
        this.res = res;
        this.open = true;
        res.writeHead(200, {
            'Content-Type': 'text/event-stream',
            'Cache-Control': 'no-cache',
            Connection: 'keep-alive',
            'Mcp-Session-Id': session.id,
        });
        res.on('close', () => {
            this.open = false;
        });
        this.write('', true);
    }

    write(data, priming = false) {
        if (!this.open) return false;
        const id = `${this.session.id}-${++this.session.eventSeq}`;
        const retry = priming ? 'retry: 1000\n' : '';
        this.res.write(`id: ${id}\n${retry}${priming ? '' : 'event: message\n'}data: ${data}\n\n`);
        return true;
    }

    end() {
        if (this.open) this.res.end();
        this.open = false;
    }
}

class Session {
    constructor() {
        this.id = randomUUID();
        this.eventSeq = 0;
        this.pending = new Map(); // JSON key of the id -> {res|stream, token}
        this.order = []; // keys of requests answered on a stream, oldest first
        this.getStreams = [];
        this.ended = false;
        this.child = spawn(mstack, ['mcp', '--root', root, ...extraArgs], {
            stdio: ['pipe', 'pipe', 'inherit'],
        });
        this.child.on('error', (e) => {
            process.stderr.write(`bridge: cannot start ${mstack}: ${e.message}\n`);
            this.close();
        });
        this.child.on('exit', () => this.close());
        this.child.stdin.on('error', () => this.close());
        readline.createInterface({ input: this.child.stdout }).on('line', (l) => this.fromChild(l));
    }

    send(msg) {
        if (this.ended) return false;
        this.child.stdin.write(JSON.stringify(msg) + '\n');
        return true;
    }

    fromChild(line) {
        let msg;
        try {
            msg = JSON.parse(line);
        } catch {
            process.stderr.write(`bridge: mstack wrote a line that is not JSON: ${line}\n`);
            return;
        }
        const isResponse = msg.method === undefined && msg.id !== undefined;
        if (isResponse) {
            const key = JSON.stringify(msg.id);
            const p = this.pending.get(key);
            if (!p) {
                process.stderr.write(`bridge: answer to no pending request: ${line}\n`);
                return;
            }
            this.pending.delete(key);
            this.order = this.order.filter((k) => k !== key);
            if (p.stream) {
                p.stream.write(line);
                p.stream.end();
            } else {
                const headers = { 'Content-Type': 'application/json', 'Mcp-Session-Id': this.id };
                p.res.writeHead(200, headers);
                p.res.end(line);
            }
            return;
        }
        this.route(msg, line);
    }

    route(msg, line) {
        // a notification or a server-to-client request
        const token = msg.params?.progressToken;
        if (token !== undefined) {
            for (const p of this.pending.values()) {
                if (p.stream?.open && p.token === token) {
                    p.stream.write(line);
                    return;
                }
            }
        }
        for (let i = this.order.length - 1; i >= 0; i--) {
            const p = this.pending.get(this.order[i]);
            if (p?.stream?.open) {
                p.stream.write(line);
                return;
            }
        }
        this.getStreams = this.getStreams.filter((g) => g.open);
        const g = this.getStreams[this.getStreams.length - 1];
        if (g) g.write(line);
    }

    request(msg, req, res) {
        const key = JSON.stringify(msg.id);
        if (this.pending.has(key)) {
            rpcError(res, 409, -32600, `id ${key} is already in flight in this session`, msg.id);
            return;
        }
        const entry = { token: msg.params?._meta?.progressToken };
        if (msg.method !== 'initialize' && accepts(req, 'text/event-stream')) {
            entry.stream = new Stream(this, res);
            this.order.push(key);
        } else {
            entry.res = res;
        }
        this.pending.set(key, entry);
        if (!this.send(msg)) rpcError(res, 404, -32001, 'session ended', msg.id);
    }

    close() {
        if (this.ended) return;
        this.ended = true;
        sessions.delete(this.id);
        this.child.stdin.end();
        for (const p of this.pending.values()) {
            if (p.stream) p.stream.end();
            else if (!p.res.headersSent) rpcError(p.res, 500, -32603, 'mstack mcp exited');
        }
        this.pending.clear();
        for (const g of this.getStreams) g.end();
    }
}

// The 2026-07-28 traffic: one child for every stateless request.
class Stateless {
    constructor() {
        this.seq = 0;
        this.pending = new Map(); // bridge id -> {id, res, sse, token, listen}
        this.child = null;
    }

    start() {
        if (this.child) return;
        this.child = spawn(mstack, ['mcp', '--root', root, ...extraArgs], {
            stdio: ['pipe', 'pipe', 'inherit'],
        });
        const child = this.child;
        child.on('error', (e) => process.stderr.write(`bridge: cannot start ${mstack}: ${e.message}\n`));
        child.on('exit', () => {
            if (this.child === child) this.child = null;
            for (const p of this.pending.values()) this.endEntry(p, 500, -32603, 'mstack mcp exited');
            this.pending.clear();
        });
        child.stdin.on('error', () => {});
        readline.createInterface({ input: child.stdout }).on('line', (l) => this.fromChild(l));
    }

    endEntry(p, status, code, message) {
        if (p.sse) p.res.end();
        else if (!p.res.headersSent) rpcError(p.res, status, code, message, p.id);
    }

    // open the SSE stream of an entry (at its first notification)
    openSse(p) {
        if (p.sse) return;
        p.sse = true;
        p.res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    }

    write(p, msg) {
        this.openSse(p);
        p.res.write(`event: message\ndata: ${JSON.stringify(msg)}\n\n`);
    }

    fromChild(line) {
        let msg;
        try {
            msg = JSON.parse(line);
        } catch {
            process.stderr.write(`bridge: mstack wrote a line that is not JSON: ${line}\n`);
            return;
        }
        if (msg.method === undefined) {
            const p = this.pending.get(msg.id);
            if (!p) {
                if (msg.id !== null) process.stderr.write(`bridge: answer to no pending request: ${line}\n`);
                return;
            }
            this.forget(msg.id);
            msg.id = p.id;
            const meta = msg.result?._meta;
            if (meta && SUB_KEY in meta) meta[SUB_KEY] = p.id;
            if (p.sse) {
                this.write(p, msg);
                p.res.end();
            } else {
                p.res.writeHead(httpStatus(msg.error), { 'Content-Type': 'application/json' });
                p.res.end(JSON.stringify(msg));
            }
            return;
        }
        // a notification: to its subscription, its progress token, else the
        // newest request that is not a subscription (logs of a request)
        const entries = [...this.pending.values()];
        let p;
        const sub = msg.params?._meta?.[SUB_KEY];
        if (sub !== undefined) {
            p = this.pending.get(sub);
            if (p) msg.params._meta[SUB_KEY] = p.id;
        } else if (msg.params?.progressToken !== undefined) {
            p = entries.find((e) => e.token === msg.params.progressToken);
        } else {
            p = entries.filter((e) => !e.listen).pop();
        }
        if (p) this.write(p, msg); // else nobody listens: the revision has no channel for it
    }

    forget(bid) {
        this.pending.delete(bid);
    }

    request(msg, req, res) {
        this.start();
        const bid = `bridge-${++this.seq}`;
        const entry = {
            id: msg.id,
            res,
            sse: false,
            token: msg.params?._meta?.progressToken,
            listen: msg.method === 'subscriptions/listen',
        };
        this.pending.set(bid, entry);
        res.on('close', () => {
            if (!this.pending.has(bid)) return;
            // the client went away before the answer: cancel the request
            this.forget(bid);
            this.child?.stdin.write(
                JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: bid } }) + '\n',
            );
        });
        this.child.stdin.write(JSON.stringify({ ...msg, id: bid }) + '\n');
    }

    close() {
        if (this.child) this.child.stdin.end();
    }
}
const stateless = new Stateless();

// The HTTP status of a 2026-07-28 answer (SEP-2575, SEP-2243).
function httpStatus(error) {
    if (!error) return 200;
    if (error.code === -32601) return 404;
    if (error.code === -32022 || error.code === -32021 || error.code === -32020) return 400;
    if (error.code === -32602 && error.data?.envelope !== undefined) return 400;
    return 200;
}

function headerValue(req, name) {
    const v = req.headers[name];
    return typeof v === 'string' ? v.trim() : undefined;
}

// A 2026-07-28 request: the header checks of the HTTP layer, then the child.
function statelessRequest(msg, req, res) {
    const claim = msg.params?._meta?.[PV_KEY];
    const version = headerValue(req, 'mcp-protocol-version');
    const method = headerValue(req, 'mcp-method');
    const mismatch = (what) => rpcError(res, 400, -32020, `header mismatch: ${what}`, msg.id);
    if (claim === undefined) {
        return rpcErrorData(res, 400, -32602,
            `the MCP-Protocol-Version header names ${version} but params._meta lacks ${PV_KEY}`,
            { envelope: { missing: [PV_KEY] } }, msg.id);
    }
    if (version === undefined) return mismatch('the MCP-Protocol-Version header is missing');
    if (version !== claim) return mismatch(`MCP-Protocol-Version is ${version}, params._meta names ${claim}`);
    if (method === undefined) return mismatch('the Mcp-Method header is missing');
    if (method !== msg.method) return mismatch(`Mcp-Method is ${method}, the body's method is ${msg.method}`);
    const named = msg.method === 'tools/call' || msg.method === 'prompts/get' ? msg.params?.name
        : msg.method === 'resources/read' ? msg.params?.uri : undefined;
    if (named !== undefined) {
        const name = headerValue(req, 'mcp-name');
        if (name === undefined) return mismatch('the Mcp-Name header is missing');
        if (name !== named) return mismatch(`Mcp-Name is ${name}, the body names ${named}`);
    }
    stateless.request(msg, req, res);
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let size = 0;
        req.on('data', (c) => {
            size += c.length;
            if (size > MAX_BODY) {
                reject(new Error(`body over ${MAX_BODY} bytes`));
                req.destroy();
            } else {
                chunks.push(c);
            }
        });
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        req.on('error', reject);
    });
}

// A POST whose MCP-Protocol-Version header is no session revision.
async function modern(req, res) {
    if (!(req.headers['content-type'] || '').startsWith('application/json'))
        return plain(res, 415, 'POST needs Content-Type: application/json');
    let msg;
    try {
        msg = JSON.parse(await readBody(req));
    } catch (e) {
        return rpcError(res, 400, -32700, `parse error: ${e.message}`);
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg))
        return rpcError(res, 400, -32600, 'the body must be one JSON-RPC message (an object)');
    if (typeof msg.method !== 'string') return rpcError(res, 400, -32600, 'a POST must carry a request or a notification');
    if (msg.id === undefined) {
        // notifications: the stateless revision has none a client must POST
        // (a request is cancelled by closing its stream)
        res.writeHead(202);
        return res.end();
    }
    if (msg.method === 'initialize' && msg.params?._meta?.[PV_KEY] === undefined)
        return rpcError(res, 400, -32020,
            `header mismatch: initialize (the session handshake) with MCP-Protocol-Version ${headerValue(req, 'mcp-protocol-version')}`, msg.id);
    return statelessRequest(msg, req, res);
}

async function handle(req, res) {
    const url = new URL(req.url, 'http://localhost');
    if (!loopbackHeaders(req)) return plain(res, 403, 'Host/Origin is not a loopback host');
    if (url.pathname !== '/mcp') return plain(res, 404, 'not found: the endpoint is /mcp');
    const version = headerValue(req, 'mcp-protocol-version');
    const sid = req.headers['mcp-session-id'];
    if (sid === undefined && req.method === 'POST' && version !== undefined && !VERSIONS.has(version)) {
        // not a session revision: the 2026-07-28 path decides (an unknown
        // version that the body names too is the child's -32022)
        return modern(req, res);
    }
    if (version !== undefined && !VERSIONS.has(version))
        return plain(res, 400, `unsupported MCP-Protocol-Version: ${version}`);
    const session = sid === undefined ? null : sessions.get(sid);

    if (req.method === 'GET' || req.method === 'DELETE') {
        if (sid === undefined) return plain(res, 400, 'missing Mcp-Session-Id');
        if (!session) return plain(res, 404, 'unknown session');
        if (req.method === 'DELETE') {
            session.close();
            return plain(res, 200, 'session ended');
        }
        if (!accepts(req, 'text/event-stream'))
            return plain(res, 406, 'GET needs Accept: text/event-stream');
        session.getStreams.push(new Stream(session, res));
        return;
    }
    if (req.method !== 'POST') return plain(res, 405, 'method not allowed', { Allow: 'GET, POST, DELETE' });
    if (!(req.headers['content-type'] || '').startsWith('application/json'))
        return plain(res, 415, 'POST needs Content-Type: application/json');

    let msg;
    try {
        msg = JSON.parse(await readBody(req));
    } catch (e) {
        return rpcError(res, 400, -32700, `parse error: ${e.message}`);
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg))
        return rpcError(res, 400, -32600, 'the body must be one JSON-RPC message (an object)');
    const isRequest = typeof msg.method === 'string' && msg.id !== undefined;

    if (sid === undefined && isRequest && msg.params?._meta?.[PV_KEY] !== undefined)
        return statelessRequest(msg, req, res);
    if (msg.method === 'initialize' && sid === undefined) {
        if (!isRequest) return rpcError(res, 400, -32600, 'initialize must be a request');
        const s = new Session();
        sessions.set(s.id, s);
        return s.request(msg, req, res);
    }
    if (sid === undefined) return rpcError(res, 400, -32000, 'missing Mcp-Session-Id', msg.id ?? null);
    if (!session) return rpcError(res, 404, -32001, 'unknown session', msg.id ?? null);
    if (isRequest) return session.request(msg, req, res);
    session.send(msg); // a notification, or the client's answer to a server request
    res.writeHead(202, { 'Mcp-Session-Id': session.id });
    res.end();
}

const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
        process.stderr.write(`bridge: ${e.stack || e}\n`);
        if (!res.headersSent) rpcError(res, 500, -32603, 'bridge error');
    });
});
server.listen(Number(portArg || 0), '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
});
function shutdown() {
    for (const s of [...sessions.values()]) s.close();
    stateless.close();
    server.close();
    setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
