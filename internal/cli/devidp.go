package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/egress"
)

func newDevIDPCommand() *cobra.Command {
	var listen string
	var clientSpecs, jwtClientSpecs, idJAGSpecs, claimSpecs []string
	var opts devidp.Options
	cmd := &cobra.Command{
		Use:   "dev-idp",
		Short: "Run a development-only OAuth 2.0 / OpenID provider on loopback, to try behalf without a real IdP",
		Long: `Run a DEVELOPMENT-ONLY identity provider: discovery, JWKS, a consent page where anyone
signs in as any username, and a token endpoint for the authorization_code (PKCE S256
required), refresh_token (rotated), client_credentials, password (any non-empty password)
and token-exchange grants (RFC 8693, with actor tokens), plus RFC 7009 revocation.
Everything is kept in memory and lost on exit. It listens on loopback only and prints
ready-to-paste commands at start.

With --anonymous-token-exchange, a token exchange that names no client is served without
client authentication, as behalf's on-behalf-of providers with --on-behalf-of-no-client
expect.

With --id-jag, token exchange also issues ID-JAGs (Identity Assertion JWT Authorization
Grants, draft-ietf-oauth-identity-assertion-authz-grant): the client trades a user's ID
token for a short-lived grant that the named authorization server redeems with the
jwt-bearer grant (RFC 7523), as in MCP's enterprise-managed authorization.

With --claim, a user's ID tokens carry a claim of your choosing, as a real IdP maps its
directory's groups: USER:NAME=VALUE is a string claim, VALUE with commas an array of
strings, and the same USER:NAME given again adds to its array. The admin console's admin
claim (docs/console.md) is one: --claim alice:groups=behalf-admins.

With --jwt-client, a client authenticates with private_key_jwt (RFC 7523) instead of a
secret: its client assertions are verified with the JWK set at the URL given, fetched for
each request, such as the jwksUrl of a behalf credential provider whose key is held in a
key-management backend (clientAuthenticationMethod PRIVATE_KEY_JWT).

Clients may use any https redirect URI, or any http one on localhost, so behalf's callback
URL needs no registration.`,
		Example: `  behalf dev-idp
  behalf dev-idp --listen 127.0.0.1:9400 --client agent:agent-secret --client ci:ci-secret --token-ttl 60s
  behalf dev-idp --jwt-client agent-jwt=http://127.0.0.1:8080/identities/oauth2/jwks/dev-idp-jwt
  behalf dev-idp --id-jag agent=https://as.example/ --id-jag agent=http://127.0.0.1:8181=agent-at-mcp
  behalf dev-idp --claim alice:groups=behalf-admins --claim bob:groups=staff,support`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, spec := range clientSpecs {
				id, secret, ok := strings.Cut(spec, ":")
				if !ok || id == "" || secret == "" {
					return fmt.Errorf("--client %q: want ID:SECRET", spec)
				}
				opts.Clients = append(opts.Clients, devidp.Client{ID: id, Secret: secret})
			}
			if len(opts.Clients) == 0 {
				opts.Clients = []devidp.Client{{ID: "agent", Secret: "agent-secret"}}
			}
			if opts.AccessTokenTTL < time.Second || opts.IDJAGTTL < time.Second {
				return errors.New("--token-ttl and --id-jag-ttl must be at least 1s")
			}
			if err := addIDJAGGrants(opts.Clients, idJAGSpecs); err != nil {
				return err
			}
			if err := addJWTClients(&opts, jwtClientSpecs); err != nil {
				return err
			}
			var err error
			if opts.UserClaims, err = userClaims(claimSpecs); err != nil {
				return err
			}
			return runDevIDP(cmd, listen, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:9400", "address to listen on: 127.0.0.1, [::1] or localhost, with a port")
	fl.StringArrayVar(&clientSpecs, "client", nil, "a client as ID:SECRET, repeatable (default agent:agent-secret)")
	fl.StringArrayVar(&jwtClientSpecs, "jwt-client", nil, "a client that authenticates with private_key_jwt, as ID=JWKS_URL: its assertions are\nverified with the JWK set there (a behalf provider's jwksUrl), repeatable")
	fl.DurationVar(&opts.AccessTokenTTL, "token-ttl", time.Hour, "lifetime of access and ID tokens")
	fl.BoolVar(&opts.DisableRefreshRotation, "no-rotation", false, "keep refresh tokens valid after use instead of rotating them")
	fl.BoolVar(&opts.AnonymousTokenExchange, "anonymous-token-exchange", false, "also serve token exchanges that name no client, without client authentication\n(for providers with onBehalfOfAuthenticationConfig NO_CLIENT; the request must name a resource or audience)")
	fl.StringArrayVar(&idJAGSpecs, "id-jag", nil, "let a client request ID-JAGs for an authorization server, as CLIENT=ISSUER[=CLIENT_ID_THERE]\n(the issuer without '='; the client's id there defaults to CLIENT), repeatable")
	fl.DurationVar(&opts.IDJAGTTL, "id-jag-ttl", 5*time.Minute, "lifetime of ID-JAGs")
	fl.StringArrayVar(&claimSpecs, "claim", nil, "a claim in a user's ID tokens, as USER:NAME=VALUE (VALUE with commas: an array of strings;\nthe same USER:NAME again adds to its array), repeatable")
	return cmd
}

// userClaims reads --claim USER:NAME=VALUE specs: VALUE is a string
// claim, a VALUE with commas an array of strings, and a USER:NAME given
// again turns its claim into an array and adds to it. devidp.New refuses
// the claims it sets itself.
func userClaims(specs []string) (map[string]map[string]any, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	claims := map[string]map[string]any{}
	for _, spec := range specs {
		user, rest, _ := strings.Cut(spec, ":")
		name, value, ok := strings.Cut(rest, "=")
		if user == "" || name == "" || !ok || value == "" || strings.Contains(name, ":") {
			return nil, fmt.Errorf("--claim %q: want USER:NAME=VALUE", spec)
		}
		values := strings.Split(value, ",")
		if slices.Contains(values, "") {
			return nil, fmt.Errorf("--claim %q: an empty value in the list", spec)
		}
		if claims[user] == nil {
			claims[user] = map[string]any{}
		}
		switch had := claims[user][name].(type) {
		case nil:
			if len(values) == 1 {
				claims[user][name] = value
			} else {
				claims[user][name] = values
			}
		case string:
			claims[user][name] = append([]string{had}, values...)
		case []string:
			claims[user][name] = append(had, values...)
		}
	}
	return claims, nil
}

// addJWTClients adds each --jwt-client ID=JWKS_URL; their JWK sets are
// fetched through an egress-policed client that may reach loopback and
// private addresses, where behalf runs next to a development IdP.
func addJWTClients(opts *devidp.Options, specs []string) error {
	for _, spec := range specs {
		id, jwksURL, ok := strings.Cut(spec, "=")
		if !ok || id == "" || jwksURL == "" {
			return fmt.Errorf("--jwt-client %q: want ID=JWKS_URL", spec)
		}
		if slices.ContainsFunc(opts.Clients, func(c devidp.Client) bool { return c.ID == id }) {
			return fmt.Errorf("--jwt-client %q: client %q is already a --client", spec, id)
		}
		opts.Clients = append(opts.Clients, devidp.Client{ID: id, JWKSURI: jwksURL})
	}
	if len(specs) > 0 {
		opts.HTTP = egress.NewClient(egress.Options{Policy: egress.Policy{AllowLoopback: true, AllowPrivate: true}, Timeout: 5 * time.Second})
	}
	return nil
}

// addIDJAGGrants adds each CLIENT=ISSUER[=CLIENT_ID_THERE] spec to its
// client; devidp.New validates the issuer URL.
func addIDJAGGrants(clients []devidp.Client, specs []string) error {
	for _, spec := range specs {
		id, rest, _ := strings.Cut(spec, "=")
		aud, there, _ := strings.Cut(rest, "=")
		i := slices.IndexFunc(clients, func(c devidp.Client) bool { return c.ID == id })
		switch {
		case id == "" || aud == "":
			return fmt.Errorf("--id-jag %q: want CLIENT=ISSUER[=CLIENT_ID_THERE]", spec)
		case i < 0:
			return fmt.Errorf("--id-jag %q: no --client %q", spec, id)
		}
		clients[i].IDJAG = append(clients[i].IDJAG, devidp.IDJAGGrant{Audience: aud, ClientID: there})
	}
	return nil
}

func runDevIDP(cmd *cobra.Command, listen string, opts devidp.Options) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, issuer, err := listenLoopback(ctx, listen, "the dev IdP accepts any password")
	if err != nil {
		return err
	}
	defer func() { _ = ln.Close() }() // already closed once Serve has run
	opts.Issuer = issuer

	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	opts.Observe = func(ev devidp.Event) {
		// Events carry no tokens or secrets.
		attrs := []any{"endpoint", ev.Endpoint, "client", ev.ClientID}
		if ev.GrantType != "" {
			attrs = append(attrs, "grant_type", ev.GrantType)
		}
		if ev.Subject != "" {
			attrs = append(attrs, "sub", ev.Subject)
		}
		if ev.Actor != "" {
			attrs = append(attrs, "act", ev.Actor)
		}
		if ev.Error != "" {
			log.Warn("refused", append(attrs, "error", ev.Error)...)
			return
		}
		log.Info("granted", attrs...)
	}
	idp, err := devidp.New(opts)
	if err != nil {
		return err
	}
	if err := printDevIDPBanner(cmd.OutOrStdout(), idp.Issuer(), opts); err != nil {
		return err
	}

	hs := &http.Server{
		Handler:           idp.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// net/http waits for a connection that has sent no request until it
		// is 5s old, and a client's spare connection is one: this
		// development server closes what is left rather than fail.
		return hs.Close()
	}
	return err
}

// printDevIDPBanner prints the endpoints and commands to paste. It shows
// the first client's secret: the operator chose it on this command line
// (or took the default), and the commands are useless without it.
func printDevIDPBanner(out io.Writer, issuer string, opts devidp.Options) error {
	c := opts.Clients[0]
	ids := make([]string, len(opts.Clients))
	for i, cl := range opts.Clients {
		ids[i] = cl.ID
	}
	rotation := "rotated on every use"
	if opts.DisableRefreshRotation {
		rotation = "not rotated"
	}
	anonymous := ""
	if opts.AnonymousTokenExchange {
		anonymous = "\n  token exchange: also without client authentication, for a request that names no client"
	}
	discovery := issuer + "/.well-known/openid-configuration"
	auth := "-u '" + c.ID + ":" + c.Secret + "'"
	_, err := fmt.Fprintf(out, `behalf dev-idp: a DEVELOPMENT-ONLY identity provider. Anyone can sign in as anyone with any
password, and everything is kept in memory. Never use it for real users.

  issuer:         %s
  discovery:      %s
  clients:        %s (any https redirect URI, or http on localhost)
  tokens:         access and ID tokens live %s; refresh tokens are %s%s

A user's JWT (the password grant; any username and password):

  USER_JWT=$(curl -s %s -d grant_type=password -d username=alice -d password=x -d scope=openid \
    %s/token | sed -n 's/.*"id_token":"\([^"]*\)".*/\1/p')

A machine-to-machine token (client credentials):

  curl -s %s -d grant_type=client_credentials %s/token

For behalf to accept the users' JWTs, in its configuration file (behalf serve --config FILE):

  inboundAuthorizers:
    - name: dev-idp
      discoveryUrl: %s
      allowedAudience: [%s]

As a CustomOauth2 credential provider (M2M and three-legged OAuth):

  printf %%s '%s' | behalf provider oauth2 create dev-idp --vendor CustomOauth2 \
    --discovery-url %s --client-id '%s' --client-secret -

On behalf of users (RFC 8693 token exchange of their JWTs, with the client's own
client-credentials token as the actor token):

  printf %%s '%s' | behalf provider oauth2 create dev-idp-obo --vendor CustomOauth2 \
    --discovery-url %s --client-id '%s' --client-secret - \
    --on-behalf-of TOKEN_EXCHANGE --actor-token M2M

`, issuer, discovery, strings.Join(ids, ", "), opts.AccessTokenTTL, rotation, anonymous,
		auth, issuer, auth, issuer, discovery, strings.Join(ids, ", "), c.Secret, discovery, c.ID, c.Secret, discovery, c.ID)
	if err == nil {
		err = printJWTClientsBanner(out, discovery, opts.Clients)
	}
	if err == nil {
		err = printClaimsBanner(out, opts.UserClaims)
	}
	if err == nil {
		err = printIDJAGBanner(out, issuer, opts)
	}
	if err == nil {
		_, err = fmt.Fprintln(out, "Stop with Ctrl-C.")
	}
	return err
}

// printJWTClientsBanner lists, when --jwt-client was given, the clients
// that authenticate with private_key_jwt, and the provider behalf needs
// for each.
func printJWTClientsBanner(out io.Writer, discovery string, clients []devidp.Client) error {
	var lines, commands []string
	for _, c := range clients {
		if c.JWKSURI == "" {
			continue
		}
		lines = append(lines, fmt.Sprintf("  %s: keys at %s", c.ID, c.JWKSURI))
		commands = append(commands, fmt.Sprintf(`  behalf provider oauth2 create %s --vendor CustomOauth2 --discovery-url %s \
    --client-id '%s' --client-auth-method PRIVATE_KEY_JWT --private-key-arn KEY_ARN --signing-algorithm ES256`, path.Base(c.JWKSURI), discovery, c.ID))
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := fmt.Fprintf(out, `Clients that authenticate with private_key_jwt (--jwt-client), each assertion verified with
the JWK set at its URL:

%s

As behalf credential providers whose key (KEY_ARN) is in a key-management backend behalf
is configured with; a behalf provider publishes its key at .../identities/oauth2/jwks/NAME:

%s

`, strings.Join(lines, "\n"), strings.Join(commands, "\n"))
	return err
}

// printClaimsBanner lists, when --claim was given, the claims each user's
// ID tokens carry.
func printClaimsBanner(out io.Writer, claims map[string]map[string]any) error {
	if len(claims) == 0 {
		return nil
	}
	var lines []string
	for _, user := range slices.Sorted(maps.Keys(claims)) {
		for _, name := range slices.Sorted(maps.Keys(claims[user])) {
			v := claims[user][name]
			if many, ok := v.([]string); ok {
				v = "[" + strings.Join(many, ", ") + "]"
			}
			lines = append(lines, fmt.Sprintf("  %s: %s = %v", user, name, v))
		}
	}
	_, err := fmt.Fprintf(out, "Claims added to users' ID tokens (--claim):\n\n%s\n\n", strings.Join(lines, "\n"))
	return err
}

// printIDJAGBanner prints, when --id-jag was given, the ID-JAG exchange of
// the first client allowed one, with that client's secret for the same
// reason as printDevIDPBanner.
func printIDJAGBanner(out io.Writer, issuer string, opts devidp.Options) error {
	i := slices.IndexFunc(opts.Clients, func(c devidp.Client) bool { return len(c.IDJAG) > 0 })
	if i < 0 {
		return nil
	}
	c := opts.Clients[i]
	lines := make([]string, 0, len(opts.Clients))
	for _, cl := range opts.Clients {
		for _, g := range cl.IDJAG {
			there := g.ClientID
			if there == "" {
				there = cl.ID
			}
			lines = append(lines, fmt.Sprintf("  %s -> %s (client_id there: %s)", cl.ID, g.Audience, there))
		}
	}
	auth := "-u '" + c.ID + ":" + c.Secret + "'"
	_, err := fmt.Fprintf(out, `ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant), living %s, for:

%s

The user's ID token, issued to %s, for an ID-JAG (the answer's access_token) at %s:

  ID_TOKEN=$(curl -s %s -d grant_type=password -d username=alice -d password=x -d scope=openid \
    %s/token | sed -n 's/.*"id_token":"\([^"]*\)".*/\1/p')
  curl -s %s -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
    -d requested_token_type=urn:ietf:params:oauth:token-type:id-jag \
    -d subject_token="$ID_TOKEN" -d subject_token_type=urn:ietf:params:oauth:token-type:id_token \
    -d audience='%s' %s/token

`, opts.IDJAGTTL, strings.Join(lines, "\n"), c.ID, c.IDJAG[0].Audience, auth, issuer, auth, c.IDJAG[0].Audience, issuer)
	return err
}
