// An MCP client on the official TypeScript SDK: it connects to an MCP
// server behind OAuth (the MCP authorization spec), has a user sign in, calls
// tools in order and prints one JSON line per step. No secret (token, code,
// client secret, assertion) is ever printed.
//
//   node_modules/.bin/node mcp-client.mjs --server http://127.0.0.1:8081/mcp \
//     --call echo='{"text":"hello"}' --call secret [--refresh] [--revoke]
//
// Without --user, the user signs in in their own browser: the client prints
// the authorization URL (on stderr, and as the line {"step":"open","url":…}),
// serves its loopback redirect URI (RFC 8252 §7.3, --redirect-uri) until the
// browser comes back with the answer, and goes on. With --user it runs
// headless instead: it plays the browser itself, filling the forms of the
// pages it meets (sign-in, consent) as that user would and allowing.
//
// The client is registered with the authorization server in one of three
// ways: --client-id (and --client-secret, and --client-auth-method when it
// is not the SDK's choice) for a pre-registered client,
// --client-metadata-url for a Client ID Metadata Document (the URL is the
// client_id), or neither for dynamic client registration (RFC 7591). A real
// client publishes its metadata document on its website; with
// --serve-client-metadata this one serves it itself, at a loopback http
// --client-metadata-url (which behalf fetches only in development).
//
// With --id-jag it signs the user in at the enterprise IdP (--idp, as
// client --idp-client-id) instead, trades the ID token there for an
// Identity Assertion JWT Authorization Grant (RFC 8693 token exchange,
// draft-ietf-oauth-identity-assertion-authz-grant) for the MCP server's
// authorization server and resource, and redeems it with the jwt-bearer
// grant (RFC 7523): no authorization request, no consent page. --replay then
// presents the last ID-JAG once more, which must be refused: it is single
// use.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, extractWWWAuthenticateParams, refreshAuthorization, selectClientAuthMethod, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { values: opts } = parseArgs({
    options: {
        server: { type: 'string' },
        user: { type: 'string' },
        call: { type: 'string', multiple: true, default: [] },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        'client-auth-method': { type: 'string' },
        'client-metadata-url': { type: 'string' },
        'serve-client-metadata': { type: 'boolean', default: false },
        'redirect-uri': { type: 'string', default: 'http://127.0.0.1:8976/callback' },
        'id-jag': { type: 'boolean', default: false },
        idp: { type: 'string' },
        'idp-client-id': { type: 'string' },
        'idp-client-secret': { type: 'string' },
        refresh: { type: 'boolean', default: false },
        revoke: { type: 'boolean', default: false },
        replay: { type: 'boolean', default: false },
        timeout: { type: 'string' }
    },
    strict: true
});
if (!opts.server) {
    fail('--server is required');
}
if ((opts['client-secret'] || opts['client-auth-method']) && !opts['client-id']) {
    fail('--client-secret and --client-auth-method need --client-id');
}
if (opts['id-jag'] && !(opts.idp && opts['idp-client-id'] && (opts['client-id'] || opts['client-metadata-url']))) {
    fail('--id-jag needs --idp, --idp-client-id and the client at the MCP server\'s authorization server (--client-id or --client-metadata-url)');
}
if (opts['serve-client-metadata'] && !isLoopbackHTTP(opts['client-metadata-url'])) {
    fail('--serve-client-metadata needs a loopback http --client-metadata-url, such as http://127.0.0.1:8977/client.json');
}
if (opts.replay && !opts['id-jag']) {
    fail('--replay needs --id-jag');
}

function isLoopbackHTTP(s) {
    try {
        const u = new URL(s);
        return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
    } catch {
        return false;
    }
}

// emit prints one step as a JSON line.
function emit(step, fields = {}) {
    process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

function fail(message) {
    emit('error', { message });
    process.exit(1);
}

// A single deadline for the whole run, longer for a person in a browser:
// the Go test bounds it too.
const timeout = Number(opts.timeout ?? (opts.user === undefined ? 300 : 30));
setTimeout(() => fail(`timed out after ${timeout}s`), timeout * 1000).unref();

// serveClientMetadata serves this client's metadata document at its
// client_id URL (draft-ietf-oauth-client-id-metadata-document §3), until
// the client exits.
async function serveClientMetadata(provider) {
    const url = new URL(opts['client-metadata-url']);
    const doc = JSON.stringify({ client_id: url.href, ...provider.clientMetadata });
    const srv = createServer((req, res) => {
        if (req.method !== 'GET' || req.url !== url.pathname) {
            res.writeHead(404).end();
            return;
        }
        // Connection: close, so that no kept-alive socket holds the client
        // open after it is done.
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=300', Connection: 'close' }).end(doc);
    });
    await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(Number(url.port || 80), url.hostname.replace(/^\[|\]$/g, ''), resolve);
    });
    srv.unref();
    emit('serving-metadata', { url: url.href });
}

// Provider is the SDK's OAuthClientProvider kept in memory. Its
// redirectToAuthorization has the user sign in up to the redirect back to
// redirectUrl and keeps the authorization code for finishAuth.
class Provider {
    constructor() {
        this.redirectUrl = opts['redirect-uri'];
        this.clientMetadataUrl = opts['client-metadata-url'];
        this._client = opts['client-id'] ? { client_id: opts['client-id'], client_secret: opts['client-secret'] } : undefined;
        if (this._client && !this._client.client_secret) {
            delete this._client.client_secret;
        }
        if (opts['client-auth-method']) {
            this._client.token_endpoint_auth_method = opts['client-auth-method'];
        }
        // SDK 1.32.2 takes only an https metadata document URL; behalf
        // also accepts http on a loopback host in development, which
        // this client then names itself.
        this._ownCIMD = Boolean(this.clientMetadataUrl) && new URL(this.clientMetadataUrl).protocol === 'http:';
        if (this._ownCIMD) {
            this._client = { client_id: this.clientMetadataUrl };
            this.clientMetadataUrl = undefined;
        }
        this._tokens = undefined;
        this._verifier = undefined;
        this._state = undefined;
        this._discovery = undefined;
        this.code = undefined;
    }

    get clientMetadata() {
        return {
            client_name: 'behalf MCP client',
            application_type: 'native',
            redirect_uris: [this.redirectUrl],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none'
        };
    }

    state() {
        this._state = randomBytes(16).toString('base64url');
        return this._state;
    }

    clientInformation() {
        if (this._ownCIMD) {
            this._ownCIMD = false;
            emit('registered', { kind: 'cimd', clientId: this._client.client_id });
        }
        return this._client;
    }

    saveClientInformation(info) {
        const first = this._client === undefined;
        this._client = info;
        if (first) {
            const kind = info.client_id === this.clientMetadataUrl ? 'cimd' : 'dcr';
            // Only the id: a registered client's secret is never printed.
            emit('registered', { kind, clientId: info.client_id });
        }
    }

    tokens() {
        return this._tokens;
    }

    saveTokens(tokens) {
        this._tokens = tokens;
        emit('tokens', { scope: tokens.scope ?? null, refreshToken: Boolean(tokens.refresh_token), expiresIn: tokens.expires_in ?? null });
    }

    saveCodeVerifier(verifier) {
        this._verifier = verifier;
    }

    codeVerifier() {
        return this._verifier;
    }

    saveDiscoveryState(state) {
        if (!this._discovery) {
            emit('discovered', {
                resource: state.resourceMetadata?.resource ?? null,
                authorizationServer: state.authorizationServerUrl,
                scopesSupported: state.resourceMetadata?.scopes_supported ?? null,
                cimdSupported: state.authorizationServerMetadata?.client_id_metadata_document_supported === true,
                registrationEndpoint: Boolean(state.authorizationServerMetadata?.registration_endpoint)
            });
        }
        this._discovery = state;
    }

    discoveryState() {
        return this._discovery;
    }

    invalidateCredentials(scope) {
        if (scope === 'all' || scope === 'tokens') {
            this._tokens = undefined;
        }
        if (scope === 'all' || scope === 'client') {
            this._client = undefined;
        }
        if (scope === 'all' || scope === 'verifier') {
            this._verifier = undefined;
        }
        if (scope === 'all' || scope === 'discovery') {
            this._discovery = undefined;
        }
    }

    async redirectToAuthorization(url) {
        emit('authorize', {
            authorizationEndpoint: url.origin + url.pathname,
            clientId: url.searchParams.get('client_id'),
            scope: url.searchParams.get('scope'),
            resource: url.searchParams.get('resource')
        });
        const back = await signIn(url, this.redirectUrl, this._state);
        const error = back.searchParams.get('error');
        if (error) {
            fail(`authorization refused: ${error}`);
        }
        this.code = back.searchParams.get('code');
    }

    takeCode() {
        const code = this.code;
        this.code = undefined;
        return code;
    }
}

// signIn has the user sign in from url until the browser is sent back to
// redirectUrl with state, and returns that URL: headless with --user, else
// in the user's own browser.
async function signIn(url, redirectUrl, state) {
    const back = opts.user === undefined ? await inBrowser(url, redirectUrl, state) : await browse(url, redirectUrl, opts.user);
    if (back.searchParams.get('state') !== state) {
        fail('the authorization response has another state');
    }
    return back;
}

// inBrowser sends the user to url in their own browser and serves
// redirectUrl, an http URL on a loopback host (RFC 8252 §7.3), until the
// browser comes back to it with state; it answers that request with a page
// telling the user to close the tab, and returns its URL. Other requests
// get 404, and an answer with another state 400: it is not this sign-in's.
async function inBrowser(url, redirectUrl, state) {
    const back = new URL(redirectUrl);
    if (back.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(back.hostname)) {
        fail('signing in in a browser needs an http loopback --redirect-uri, such as http://127.0.0.1:8976/callback');
    }
    let done;
    const returned = new Promise(resolve => {
        done = resolve;
    });
    const server = createServer((req, res) => {
        const u = new URL(req.url, back);
        const headers = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', Connection: 'close' };
        if (req.method !== 'GET' || u.pathname !== back.pathname) {
            res.writeHead(404, headers).end(closePage('Not found', 'This is not the address the sign-in returns to.'));
            return;
        }
        if (u.searchParams.get('state') !== state) {
            res.writeHead(400, headers).end(closePage('Not this sign-in', 'This answer is not for the sign-in this client started.'));
            return;
        }
        const ok = u.searchParams.has('code') && !u.searchParams.has('error');
        res.writeHead(200, headers).end(ok ? closePage('Signed in', 'You may close this tab and return to the terminal.')
            : closePage('Sign-in did not complete', 'You may close this tab; the terminal says why.'));
        done(u);
    });
    await new Promise((resolve, reject) => {
        server.once('error', err => reject(new Error(`cannot serve ${back.origin}: ${err.message}`)));
        server.listen(Number(back.port || 80), back.hostname.replace(/^\[|\]$/g, ''), resolve);
    }).catch(err => fail(err.message));
    process.stderr.write(`Open this address in your browser to sign in:\n\n  ${url}\n\n`);
    emit('open', { url: String(url) });
    const u = await returned;
    server.close();
    emit('callback', { redirectUri: u.origin + u.pathname });
    return u;
}

function closePage(title, text) {
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>` +
        `<body style="font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto"><h1>${title}</h1><p>${text}</p></body></html>`;
}

// browse is the user's browser from url until it is sent to redirectUrl:
// it follows redirects by hand, keeps cookies, and on each HTML page submits
// the first form as the user would: its hidden fields, the username, and the
// Allow button.
async function browse(url, redirectUrl, user) {
    const jar = new Map(); // host -> name -> value
    const back = new URL(redirectUrl);
    let req = { url: new URL(url), method: 'GET', body: undefined };
    for (let hop = 0; hop < 20; hop++) {
        const headers = { Accept: 'text/html' };
        const cookies = jar.get(req.url.host);
        if (cookies?.size) {
            headers.Cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
        }
        if (req.body) {
            headers['Content-Type'] = 'application/x-www-form-urlencoded';
        }
        const res = await fetch(req.url, { method: req.method, headers, body: req.body, redirect: 'manual' });
        for (const c of res.headers.getSetCookie()) {
            const [pair] = c.split(';');
            const i = pair.indexOf('=');
            if (!jar.has(req.url.host)) {
                jar.set(req.url.host, new Map());
            }
            jar.get(req.url.host).set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
        }
        if (res.status >= 300 && res.status < 400) {
            await res.body?.cancel();
            const next = new URL(res.headers.get('Location'), req.url);
            if (next.origin === back.origin && next.pathname === back.pathname) {
                return next;
            }
            emit('redirect', { to: next.origin + next.pathname });
            req = { url: next, method: 'GET', body: undefined };
            continue;
        }
        const page = await res.text();
        const form = firstForm(page);
        if (res.status !== 200 || !form) {
            const title = /<title>([^<]*)<\/title>/i.exec(page)?.[1] ?? page.slice(0, 80).replace(/\s+/g, ' ');
            fail(`no form at ${req.url.origin + req.url.pathname}: ${res.status} ${title}`);
        }
        const fields = new URLSearchParams();
        for (const input of form.inputs) {
            if (input.type === 'hidden') {
                fields.append(input.name, input.value);
            } else if (input.name === 'username') {
                fields.append(input.name, user);
            }
        }
        const allow = form.buttons.find(b => /^(allow|approve|consent)$/i.test(b.value) || /allow|approve/i.test(b.text));
        if (!allow) {
            fail(`no Allow button on the form at ${req.url.origin + req.url.pathname}`);
        }
        if (allow.name) {
            fields.append(allow.name, allow.value);
        }
        emit('form', {
            page: req.url.origin + req.url.pathname,
            title: unescapeHTML(/<title>([^<]*)<\/title>/i.exec(page)?.[1]?.trim() ?? ''),
            action: new URL(form.action || req.url.href, req.url).pathname,
            fields: [...new Set(fields.keys())].sort(),
            username: form.inputs.some(i => i.name === 'username')
        });
        req = { url: new URL(form.action || req.url.href, req.url), method: (form.method || 'GET').toUpperCase(), body: undefined };
        if (req.method === 'POST') {
            req.body = fields.toString();
        } else {
            req.url.search = fields.toString();
        }
    }
    fail('too many redirects');
}

// firstForm reads the first <form> of an HTML page: its action and method,
// its inputs, and its submit buttons with their text. It is enough for
// server-rendered consent pages, not a general HTML parser.
function firstForm(html) {
    const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
    if (!m) {
        return undefined;
    }
    const attrs = s => {
        const out = {};
        for (const a of s.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
            out[a[1].toLowerCase()] = unescapeHTML(a[2] ?? a[3] ?? a[4] ?? '');
        }
        return out;
    };
    const form = attrs(m[1]);
    const inputs = [...m[2].matchAll(/<input\b([^>]*)>/gi)].map(i => attrs(i[1])).map(a => ({
        type: (a.type || 'text').toLowerCase(),
        name: a.name,
        value: a.value ?? ''
    }));
    const buttons = [...m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map(b => {
        const a = attrs(b[1]);
        return { name: a.name, value: a.value ?? '', type: (a.type || 'submit').toLowerCase(), text: b[2].replace(/<[^>]*>/g, '').trim() };
    });
    for (const i of inputs.filter(i => i.type === 'submit')) {
        buttons.push({ name: i.name, value: i.value, type: 'submit', text: i.value });
    }
    return {
        action: form.action,
        method: form.method,
        inputs: inputs.filter(i => i.name && i.type !== 'submit'),
        buttons: buttons.filter(b => b.type === 'submit')
    };
}

function unescapeHTML(s) {
    return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
        const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()];
        if (named) {
            return named;
        }
        return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    });
}

// noteChallenges notes the resource server's 401 and 403 answers, the
// steps that start discovery and step-up.
//
// On 403 insufficient_scope for scopes the access token lacks, it forgets
// the tokens so that the SDK's step-up authorizes anew: SDK 1.32.2 would
// refresh first, and a refresh cannot widen the scope (RFC 6749 §6), so it
// would get the same 403 and give up (typescript-sdk issue 2255).
async function noteChallenges(input, init) {
    const res = await fetch(input, init);
    if ((res.status !== 401 && res.status !== 403) || String(input) !== opts.server) {
        return res;
    }
    const challenge = res.headers.get('WWW-Authenticate');
    emit('challenge', { status: res.status, wwwAuthenticate: challenge });
    const { error, scope } = extractWWWAuthenticateParams(res);
    const granted = (provider.tokens()?.scope ?? '').split(' ').filter(Boolean);
    provider.wantScope = scope;
    if (res.status === 403 && error === 'insufficient_scope' && scope?.split(' ').some(s => !granted.includes(s))) {
        provider.wantScope = [...new Set([...granted, ...scope.split(' ')])].join(' ');
        provider.invalidateCredentials('tokens');
    }
    return res;
}

const provider = new Provider();
if (opts['serve-client-metadata']) {
    await serveClientMetadata(provider);
}
const serverUrl = new URL(opts.server);
if (opts['id-jag']) {
    await useIDJAG(provider);
}
let transport;

// authorized runs op; when the SDK had to send the user to the
// authorization server, it redeems the code and runs op once more.
async function authorized(op) {
    try {
        return await op();
    } catch (err) {
        if (!(err instanceof UnauthorizedError) || !provider.code) {
            throw err;
        }
        await transport.finishAuth(provider.takeCode());
        return await op();
    }
}

const client = new Client({ name: 'behalf-mcp-client', version: '1.0.0' });
await authorized(async () => {
    transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: noteChallenges });
    await client.connect(transport);
});
const { tools } = await client.listTools();
emit('tools', { names: tools.map(t => t.name).sort() });

for (const call of opts.call) {
    await callTool(call);
}

if (opts.refresh) {
    // RFC 6749 §6: a new access token for the refresh token, through the
    // SDK's own refresh in auth(); then the first tool again with it.
    const before = provider.tokens()?.access_token;
    const result = await auth(provider, { serverUrl, fetchFn: noteChallenges });
    emit('refreshed', { result, newAccessToken: provider.tokens()?.access_token !== before });
    if (opts.call.length) {
        await callTool(opts.call[0]);
    }
}

if (opts.revoke) {
    await revoke();
}
if (opts.replay) {
    await replay();
}
await client.close();
emit('done');

async function callTool(call) {
    const i = call.indexOf('=');
    const name = i < 0 ? call : call.slice(0, i);
    const args = i < 0 ? {} : JSON.parse(call.slice(i + 1));
    const res = await authorized(() => client.callTool({ name, arguments: args }));
    emit('call', { tool: name, isError: res.isError ?? false, text: res.content?.map(c => c.text).join('') });
}

// revoke is RFC 7009: the refresh token is revoked at the authorization
// server's revocation endpoint, and the SDK's next refresh must fail.
async function revoke() {
    const meta = provider.discoveryState()?.authorizationServerMetadata;
    const endpoint = meta?.revocation_endpoint;
    const refresh = provider.tokens()?.refresh_token;
    if (!endpoint || !refresh) {
        fail(`cannot revoke: revocation endpoint ${Boolean(endpoint)}, refresh token ${Boolean(refresh)}`);
    }
    const info = provider.clientInformation();
    const body = new URLSearchParams({ token: refresh, token_type_hint: 'refresh_token' });
    const { method, headers } = clientAuth(info, meta.revocation_endpoint_auth_methods_supported ?? meta.token_endpoint_auth_methods_supported, body);
    const res = await fetch(endpoint, { method: 'POST', headers, body });
    await res.body?.cancel();
    emit('revoked', { status: res.status, authMethod: method });
    const state = provider.discoveryState();
    try {
        await refreshAuthorization(state.authorizationServerUrl, {
            metadata: meta,
            clientInformation: info,
            refreshToken: refresh,
            resource: new URL(state.resourceMetadata.resource)
        });
        emit('refresh-after-revocation', { error: null });
    } catch (err) {
        emit('refresh-after-revocation', { error: err.constructor.errorCode ?? err.name, description: err.message });
    }
}

// replay presents the last ID-JAG once more at the token endpoint, with
// the same client authentication: an ID-JAG is single use (its jti), so the
// authorization server must refuse it.
async function replay() {
    const meta = provider.discoveryState()?.authorizationServerMetadata;
    if (!meta?.token_endpoint || !provider.lastGrant) {
        fail('cannot replay: no ID-JAG was redeemed');
    }
    const body = new URLSearchParams(provider.lastGrant);
    const { headers } = clientAuth(provider.clientInformation(), meta.token_endpoint_auth_methods_supported, body);
    const res = await fetch(meta.token_endpoint, { method: 'POST', headers, body });
    const answer = await res.json().catch(() => ({}));
    emit('replayed', { status: res.status, error: answer.error ?? null, accessToken: Boolean(answer.access_token) });
}

// clientAuth authenticates the client info at the authorization server
// with the method the SDK picks among methods (RFC 6749 §2.3): a Basic
// header, or its id (and secret) added to body. It returns the request's
// headers and the method.
function clientAuth(info, methods, body) {
    const method = selectClientAuthMethod(info, methods ?? []);
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    if (method === 'client_secret_basic') {
        const enc = encodeURIComponent; // RFC 6749 §2.3.1
        headers.Authorization = 'Basic ' + Buffer.from(`${enc(info.client_id)}:${enc(info.client_secret)}`).toString('base64');
    } else {
        body.set('client_id', info.client_id);
        if (method === 'client_secret_post') {
            body.set('client_secret', info.client_secret);
        }
    }
    return { method, headers };
}

// useIDJAG signs the user in at the IdP (authorization code with PKCE,
// scope openid) and turns provider into a non-interactive one whose token
// request is the jwt-bearer grant of an ID-JAG, obtained anew for each
// token request with the scope last challenged for.
async function useIDJAG(provider) {
    const idp = await (await fetch(opts.idp.replace(/\/$/, '') + '/.well-known/openid-configuration')).json();
    const idpAuth = new URLSearchParams();
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    if (opts['idp-client-secret']) {
        const enc = encodeURIComponent; // RFC 6749 §2.3.1
        headers.Authorization = 'Basic ' + Buffer.from(`${enc(opts['idp-client-id'])}:${enc(opts['idp-client-secret'])}`).toString('base64');
    } else {
        idpAuth.set('client_id', opts['idp-client-id']);
    }
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const url = new URL(idp.authorization_endpoint);
    url.search = new URLSearchParams({
        response_type: 'code',
        client_id: opts['idp-client-id'],
        redirect_uri: provider.redirectUrl,
        scope: 'openid',
        state,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256'
    }).toString();
    emit('idp-authorize', { authorizationEndpoint: url.origin + url.pathname, clientId: opts['idp-client-id'], scope: 'openid' });
    const back = await signIn(url, provider.redirectUrl, state);
    if (!back.searchParams.get('code')) {
        fail(`the IdP's authorization response: ${back.searchParams.get('error') ?? 'no code'}`);
    }
    const login = await tokenRequest(idp.token_endpoint, headers, {
        ...Object.fromEntries(idpAuth),
        grant_type: 'authorization_code',
        code: back.searchParams.get('code'),
        redirect_uri: provider.redirectUrl,
        code_verifier: verifier
    });
    if (!login.id_token) {
        fail('the IdP issued no ID token');
    }
    emit('idp-login', { idToken: true });

    provider.redirectUrl = undefined; // the SDK's sign of a non-interactive flow
    provider.prepareTokenRequest = async () => {
        const d = provider.discoveryState();
        const audience = d.authorizationServerMetadata?.issuer ?? d.authorizationServerUrl;
        const resource = d.resourceMetadata?.resource;
        const exchange = {
            ...Object.fromEntries(idpAuth),
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token: login.id_token,
            subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
            requested_token_type: 'urn:ietf:params:oauth:token-type:id-jag',
            audience
        };
        if (resource) {
            exchange.resource = resource;
        }
        if (provider.wantScope) {
            exchange.scope = provider.wantScope;
        }
        const jag = await tokenRequest(idp.token_endpoint, headers, exchange);
        emit('id-jag', { audience, resource: resource ?? null, scope: jag.scope ?? null, issuedTokenType: jag.issued_token_type });
        const grant = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jag.access_token });
        if (provider.wantScope) {
            grant.set('scope', provider.wantScope);
        }
        // The request as the SDK sends it (it adds the resource), for --replay.
        provider.lastGrant = new URLSearchParams(grant);
        if (resource) {
            provider.lastGrant.set('resource', resource);
        }
        return grant;
    };
}

// tokenRequest posts a token request and returns its JSON answer, or stops
// with the OAuth error (RFC 6749 §5.2), never with the request's secrets.
async function tokenRequest(endpoint, headers, params) {
    const res = await fetch(endpoint, { method: 'POST', headers, body: new URLSearchParams(params) });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
        fail(`${params.grant_type} at ${endpoint}: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`);
    }
    return body;
}
