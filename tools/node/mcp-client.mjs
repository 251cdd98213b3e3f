// A headless MCP client on the official TypeScript SDK: it connects to an
// MCP server behind OAuth (the MCP authorization spec), signs a user in by
// filling the forms of the pages it meets in place of a browser, calls tools
// in order and prints one JSON line per step. No secret (token, code, client
// secret) is ever printed.
//
//   node_modules/.bin/node mcp-client.mjs --server http://127.0.0.1:8081/mcp \
//     --user alice --call echo='{"text":"hello"}' --call secret [--refresh] [--revoke]
//
// The client is registered with the authorization server in one of three
// ways: --client-id (and --client-secret) for a pre-registered client,
// --client-metadata-url for a Client ID Metadata Document (the URL is the
// client_id), or neither for dynamic client registration (RFC 7591).
//
// With --id-jag it signs the user in at the enterprise IdP (--idp, as
// client --idp-client-id) instead, trades the ID token there for an
// Identity Assertion JWT Authorization Grant (RFC 8693 token exchange,
// draft-ietf-oauth-identity-assertion-authz-grant) for the MCP server's
// authorization server and resource, and redeems it with the jwt-bearer
// grant (RFC 7523): no authorization request, no consent page.
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, extractWWWAuthenticateParams, refreshAuthorization, selectClientAuthMethod, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { values: opts } = parseArgs({
    options: {
        server: { type: 'string' },
        user: { type: 'string', default: 'alice' },
        call: { type: 'string', multiple: true, default: [] },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        'client-metadata-url': { type: 'string' },
        'redirect-uri': { type: 'string', default: 'http://127.0.0.1:8976/callback' },
        'id-jag': { type: 'boolean', default: false },
        idp: { type: 'string' },
        'idp-client-id': { type: 'string' },
        'idp-client-secret': { type: 'string' },
        refresh: { type: 'boolean', default: false },
        revoke: { type: 'boolean', default: false },
        timeout: { type: 'string', default: '30' }
    },
    strict: true
});
if (!opts.server) {
    fail('--server is required');
}
if (opts['client-secret'] && !opts['client-id']) {
    fail('--client-secret needs --client-id');
}
if (opts['id-jag'] && !(opts.idp && opts['idp-client-id'] && (opts['client-id'] || opts['client-metadata-url']))) {
    fail('--id-jag needs --idp, --idp-client-id and the client at the MCP server\'s authorization server (--client-id or --client-metadata-url)');
}

// emit prints one step as a JSON line.
function emit(step, fields = {}) {
    process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

function fail(message) {
    emit('error', { message });
    process.exit(1);
}

// A single deadline for the whole run: the Go test bounds it too.
setTimeout(() => fail(`timed out after ${opts.timeout}s`), Number(opts.timeout) * 1000).unref();

// HeadlessProvider is the SDK's OAuthClientProvider kept in memory. Its
// redirectToAuthorization plays the user's browser up to the redirect back
// to redirectUrl and keeps the authorization code for finishAuth.
class HeadlessProvider {
    constructor() {
        this.redirectUrl = opts['redirect-uri'];
        this.clientMetadataUrl = opts['client-metadata-url'];
        this._client = opts['client-id'] ? { client_id: opts['client-id'], client_secret: opts['client-secret'] } : undefined;
        if (this._client && !this._client.client_secret) {
            delete this._client.client_secret;
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
        const back = await browse(url, this.redirectUrl, opts.user);
        if (back.searchParams.get('state') !== this._state) {
            fail('the authorization response has another state');
        }
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

const provider = new HeadlessProvider();
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
    const methods = meta.revocation_endpoint_auth_methods_supported ?? meta.token_endpoint_auth_methods_supported ?? [];
    const method = selectClientAuthMethod(info, methods);
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams({ token: refresh, token_type_hint: 'refresh_token' });
    if (method === 'client_secret_basic') {
        const enc = encodeURIComponent; // RFC 6749 §2.3.1
        headers.Authorization = 'Basic ' + Buffer.from(`${enc(info.client_id)}:${enc(info.client_secret)}`).toString('base64');
    } else {
        body.set('client_id', info.client_id);
        if (method === 'client_secret_post') {
            body.set('client_secret', info.client_secret);
        }
    }
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
    const back = await browse(url, provider.redirectUrl, opts.user);
    if (back.searchParams.get('state') !== state || !back.searchParams.get('code')) {
        fail(`the IdP's authorization response: ${back.searchParams.get('error') ?? 'another state'}`);
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
