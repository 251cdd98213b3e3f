// An MCP server on the official TypeScript SDK: McpServer over the
// Streamable HTTP transport, stateless (a new server and transport per
// request, no Mcp-Session-Id), on node:http. It does no authorization of its
// own: behalf's tests put it behind the gateway's mcp route, which verifies
// the users' tokens and passes on only the route's credential.
//
//   node_modules/.bin/node mcp-server.mjs --listen 127.0.0.1:8082
//
// It serves POST /mcp and prints one JSON line, {"listening":"<URL>/mcp"},
// once it listens. Tools (no arguments):
//   hello  answers "hello from TypeScript"
//   admin  answers "the admin tool"
//   seen   answers which credentials the request carried: the
//          X-Api-Key header's value and whether an Authorization header came
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const { values: opts } = parseArgs({ options: { listen: { type: 'string' } } });
const [host, port] = (opts.listen ?? '').split(':');
if (!host || !port) {
    console.error('usage: mcp-server.mjs --listen HOST:PORT');
    process.exit(2);
}

function newServer() {
    const server = new McpServer({ name: 'ts-notes', version: '1.0.0' });
    const text = (t) => ({ content: [{ type: 'text', text: t }] });
    server.registerTool('hello', { description: 'says hello' }, async () => text('hello from TypeScript'));
    server.registerTool('admin', { description: 'an administrator tool' }, async () => text('the admin tool'));
    server.registerTool('seen', { description: 'the credentials the request carried' }, async (extra) => {
        const headers = extra.requestInfo?.headers ?? {};
        return text(JSON.stringify({ apiKey: headers['x-api-key'] ?? '', authorization: headers.authorization !== undefined }));
    });
    return server;
}

const MAX_BODY = 1 << 20;

const http = createServer(async (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (url.pathname !== '/mcp') {
        res.writeHead(404).end();
        return;
    }
    if (req.method !== 'POST') {
        // Stateless: no standalone SSE stream, no session to delete.
        res.writeHead(405, { Allow: 'POST' }).end();
        return;
    }
    const chunks = [];
    let size = 0;
    for await (const chunk of req) {
        size += chunk.length;
        if (size > MAX_BODY) {
            res.writeHead(413).end();
            return;
        }
        chunks.push(chunk);
    }
    let body;
    try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
        res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }));
        return;
    }
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
        transport.close();
        server.close();
    });
    try {
        await server.connect(transport);
        await transport.handleRequest(req, res, body);
    } catch (err) {
        console.error('mcp-server:', err?.message ?? err);
        if (!res.headersSent) {
            res.writeHead(500).end();
        }
    }
});
http.headersTimeout = 10_000;
http.requestTimeout = 30_000;
http.listen(Number(port), host, () => {
    console.log(JSON.stringify({ listening: `http://${host}:${port}/mcp` }));
});
for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => http.close(() => process.exit(0)));
}
