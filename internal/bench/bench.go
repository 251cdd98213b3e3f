// Package bench measures the data plane's vend paths over real HTTP:
// requests signed with SigV4 as the AWS SDKs sign them, against a real
// behalf server on SQLite or PostgreSQL, with every call durably audited.
// The same harness against a handler that does nothing gives the floor of
// the machine, so the figures can be read on any hardware.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver, to create the benchmark's database

	"github.com/behalf-dev/behalf/internal/config"
	"github.com/behalf-dev/behalf/internal/devidp"
	"github.com/behalf-dev/behalf/internal/server"
	"github.com/behalf-dev/behalf/internal/storage"
)

// Operations the benchmark can run, in the order it runs them.
var Operations = []string{"noop", "jwt", "apikey", "m2m", "user"}

var titles = map[string]string{
	"noop":   "no-op handler (the floor: SigV4 client + HTTP)",
	"jwt":    "GetWorkloadAccessTokenForJWT",
	"apikey": "GetResourceApiKey",
	"m2m":    "GetResourceOauth2Token (M2M, cached)",
	"user":   "GetResourceOauth2Token (USER_FEDERATION, stored)",
}

// Options configure a run.
type Options struct {
	// Postgres, when set, is a PostgreSQL URL whose user may create
	// databases; the benchmark creates one of its own and drops it after.
	// Otherwise it runs on SQLite in a temporary directory.
	Postgres    string
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency int
	Operations  []string
	// Telemetry measures every operation also on a second server with
	// telemetry on, in slices alternating with the first: traces sampled
	// at 100% and exported over OTLP/HTTP to a receiver in this process
	// that discards them, and Prometheus metrics recorded (not scraped).
	Telemetry bool
}

// Result is one operation's figures.
type Result struct {
	Operation string
	Requests  int64
	Errors    int64
	Elapsed   time.Duration
	P50, P99  time.Duration
	// CPU is the CPU time the process used during the measurement: the
	// server's, the load generator's and the runtime's.
	CPU time.Duration
	// FirstError describes one failed request, if any failed.
	FirstError string
	// Telemetry is whether the server had telemetry on.
	Telemetry bool
}

// RPS is successful requests per second.
func (r Result) RPS() float64 { return float64(r.Requests-r.Errors) / r.Elapsed.Seconds() }

// CPUPerCall is the process's CPU time per request, load generator
// included: unlike RPS, it does not move with what else the machine runs.
func (r Result) CPUPerCall() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

const (
	adminID     = "AKIDBEHALFBENCHADMIN"
	adminSecret = "behalf-bench-admin-secret-0123456789" //nolint:gosec // G101: the benchmark's own admin of a throw-away server on loopback
	region      = "us-east-1"
)

// Run sets everything up, measures the operations, prints a table to out,
// and tears everything down. The operations are measured in rounds, each
// giving every operation a slice of its time, so that whatever else the
// machine does weighs on all of them alike, the floor included. With
// Options.Telemetry, a second server with telemetry on runs beside the
// first and gets, in each round, a slice of each operation next to the
// first's (off, on; then on, off); a second table and the comparison
// follow.
func Run(ctx context.Context, opts Options, out io.Writer) (_ []Result, err error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	receivers := []*otlpReceiver{nil} // telemetry off
	if opts.Telemetry {
		receiver, err := startOTLPReceiver(ctx)
		if err != nil {
			return nil, err
		}
		defer func() { _ = receiver.Close() }() // the run is over; nothing is lost
		receivers = append(receivers, receiver)
	}
	targets := make([]*target, 0, len(receivers))
	defer func() {
		for _, t := range targets {
			err = errors.Join(err, t.env.stop())
		}
	}()
	for _, r := range receivers {
		t, err := newTarget(ctx, opts, r)
		targets = append(targets, t)
		if err != nil {
			return nil, err
		}
	}
	return printResults(ctx, out, opts, targets, measure(ctx, opts, targets), receivers[len(receivers)-1])
}

// rounds is how many slices of its time each operation gets.
const rounds = 6

// measure warms each operation up on every target, then measures them in
// rounds, and returns each target's sample of each operation.
func measure(ctx context.Context, opts Options, targets []*target) []map[string]*sample {
	samples := make([]map[string]*sample, len(targets))
	for i, t := range targets {
		samples[i] = map[string]*sample{}
		for _, op := range opts.Operations {
			t.warm(ctx, op, opts.Warmup)
			samples[i][op] = &sample{}
		}
	}
	slice := max(opts.Duration/rounds, time.Millisecond)
	for round := range rounds {
		for _, op := range opts.Operations {
			for j := range targets {
				i := j
				if round%2 == 1 {
					i = len(targets) - 1 - j
				}
				samples[i][op].add(targets[i].h.run(ctx, targets[i].reqs[op], slice))
			}
		}
	}
	return samples
}

// printResults prints each target's table and, with telemetry on (a
// receiver), the comparison; it returns every target's results.
func printResults(ctx context.Context, out io.Writer, opts Options, targets []*target, samples []map[string]*sample, receiver *otlpReceiver) (results []Result, err error) {
	for i, t := range targets {
		var rs []Result
		for _, op := range opts.Operations {
			rs = append(rs, samples[i][op].result(op, i == 1))
		}
		results = append(results, rs...)
		if i == 1 {
			if _, err := fmt.Fprintf(out, "\nwith telemetry on: traces sampled at 100%% and exported over OTLP/HTTP to a receiver in this process, metrics recorded for Prometheus; a second server measured in slices alternating with the first\n\n"); err != nil {
				return results, err
			}
		}
		if err := t.report(ctx, out, opts, rs); err != nil {
			return results, err
		}
	}
	if receiver == nil {
		return results, nil
	}
	// The spans still queued are counted too.
	if err := targets[len(targets)-1].env.flush(ctx); err != nil {
		return results, err
	}
	if _, err := fmt.Fprintf(out, "telemetry received: %d OTLP exports, %.1f MB\n\n", receiver.exports.Load(), float64(receiver.bytes.Load())/1e6); err != nil {
		return results, err
	}
	return results, compare(out, results)
}

// target is one behalf server under measurement: its environment, the
// load generator, each operation's request, and the audit count before
// the first measured call.
type target struct {
	env         *environment
	h           *harness
	reqs        map[string]request
	auditBefore int64
}

// newTarget starts an environment, with telemetry exported to receiver
// when it is not nil, and prepares its requests. On an error the target's
// environment holds what was started, for stop.
//
// The servers' goroutines carry the profiler label behalf=telemetry-off or
// telemetry-on, so that a CPU profile (--cpuprofile) tells them apart from
// each other and from the load generator's: go tool pprof -tagfocus.
func newTarget(ctx context.Context, opts Options, receiver *otlpReceiver) (*target, error) {
	label := "telemetry-off"
	if receiver != nil {
		label = "telemetry-on"
	}
	var env *environment
	var err error
	pprof.Do(ctx, pprof.Labels("behalf", label), func(ctx context.Context) { env, err = start(ctx, opts, receiver) })
	t := &target{env: env, h: newHarness(opts.Concurrency)}
	if err != nil {
		return t, err
	}
	if t.reqs, err = prepare(ctx, t.h, env); err != nil {
		return t, err
	}
	t.auditBefore, err = auditCount(ctx, env.store)
	return t, err
}

// warm runs op unmeasured for d.
func (t *target) warm(ctx context.Context, op string, d time.Duration) {
	if d > 0 {
		t.h.run(ctx, t.reqs[op], d)
	}
}

// report prints results with the audit records the target's server wrote
// since it was prepared.
func (t *target) report(ctx context.Context, out io.Writer, opts Options, results []Result) error {
	after, err := auditCount(ctx, t.env.store)
	if err != nil {
		return err
	}
	return report(out, opts, t.env.backend, results, after-t.auditBefore)
}

// compare prints each operation's throughput with telemetry on against
// off.
func compare(out io.Writer, results []Result) error {
	off := map[string]Result{}
	for _, r := range results {
		if !r.Telemetry {
			off[r.Operation] = r
		}
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	if _, err := fmt.Fprintln(tw, "operation\ttelemetry off req/s\ton req/s\ton / off\tCPU per call off\ton\toff / on\t"); err != nil {
		return err
	}
	for _, on := range results {
		if !on.Telemetry {
			continue
		}
		o := off[on.Operation]
		if _, err := fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f%%\t%s\t%s\t%.0f%%\t\n", titles[on.Operation], o.RPS(), on.RPS(), 100*on.RPS()/o.RPS(),
			micros(o.CPUPerCall()), micros(on.CPUPerCall()), 100*float64(o.CPUPerCall())/float64(on.CPUPerCall())); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// complete fills in the defaults and checks the operations' names.
func (o *Options) complete() error {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if len(o.Operations) == 0 {
		o.Operations = Operations
	}
	for _, op := range o.Operations {
		if !slices.Contains(Operations, op) {
			return fmt.Errorf("unknown operation %q; choose from %s", op, strings.Join(Operations, ", "))
		}
	}
	return nil
}

// environment is what a run measures against: a behalf server, the
// development identity provider, the no-op server of the floor, and what
// tears them down.
type environment struct {
	base    string // the behalf server's URL
	idpURL  string
	noopURL string
	store   storage.Storage
	// flush exports the server's queued telemetry.
	flush   func(context.Context) error
	backend string // the storage, described for the report
	stops   []func() error
}

// onStop registers a teardown step; stop runs them in reverse order.
func (e *environment) onStop(f func() error) { e.stops = append(e.stops, f) }

// stop tears down whatever start set up, last first, and reports every
// failure.
func (e *environment) stop() error {
	var errs []error
	for i := len(e.stops) - 1; i >= 0; i-- {
		errs = append(errs, e.stops[i]())
	}
	return errors.Join(errs...)
}

// start runs the identity provider, the no-op server, and a behalf server
// on a fresh SQLite directory or PostgreSQL database. On an error the
// environment holds what was started, for stop.
func start(ctx context.Context, opts Options, receiver *otlpReceiver) (*environment, error) {
	env := &environment{}
	idp, err := startIDP(ctx)
	if err != nil {
		return env, err
	}
	env.onStop(idp.Close)
	env.idpURL = idp.URL
	noop, err := startNoop(ctx)
	if err != nil {
		return env, err
	}
	env.onStop(noop.Close)
	env.noopURL = noop.URL
	f, err := env.serverConfig(ctx, opts)
	if err != nil {
		return env, err
	}
	if receiver != nil {
		f.Telemetry.OTLP.Endpoint = receiver.URL
		f.Telemetry.Traces.Enabled = true
		all := 1.0
		f.Telemetry.Traces.SampleRatio = &all
		f.Telemetry.Metrics.Prometheus.Enabled = true
	}
	return env, env.startBehalf(ctx, f)
}

// serverConfig makes the data directory, and the database on PostgreSQL,
// and returns the server's configuration file.
func (e *environment) serverConfig(ctx context.Context, opts Options) (config.File, error) {
	dataDir, err := os.MkdirTemp("", "behalf-bench-")
	if err != nil {
		return config.File{}, err
	}
	e.onStop(func() error { return os.RemoveAll(dataDir) })
	e.backend = "SQLite (" + dataDir + ")"
	f := config.Defaults()
	f.DataDir, f.Log.Level = dataDir, "error"
	if opts.Postgres != "" {
		dsn, drop, err := createDatabase(ctx, opts.Postgres)
		if err != nil {
			return config.File{}, err
		}
		e.onStop(drop)
		f.Storage, e.backend = dsn, "PostgreSQL ("+server.RedactDSN(dsn)+")"
	}
	f.InboundAuthorizers = []config.InboundAuthorizerFile{{Name: "bench", DiscoveryURL: e.idpURL + "/.well-known/openid-configuration", AllowedAudience: []string{benchClientID}}}
	return f, nil
}

// startBehalf runs a behalf server with configuration f on a loopback
// port, bootstrapped with the benchmark's admin.
func (e *environment) startBehalf(ctx context.Context, f config.File) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	f.Listen = ln.Addr().String()
	cfg, err := f.Validate()
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler), server.Options{Getenv: func(k string) string {
		return map[string]string{"BEHALF_BOOTSTRAP_ACCESS_KEY_ID": adminID, "BEHALF_BOOTSTRAP_SECRET_ACCESS_KEY": adminSecret}[k]
	}})
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	e.onStop(srv.Close)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, ln) }()
	e.onStop(func() error { stop(); return <-done })
	e.base, e.store, e.flush = "http://"+ln.Addr().String(), srv.Store(), srv.Telemetry().ForceFlush
	return nil
}

// prepare creates what the vend paths need and returns each operation's
// request.
func prepare(ctx context.Context, h *harness, env *environment) (map[string]request, error) {
	runtimeCreds, err := setUp(ctx, h, env.base, env.idpURL)
	if err != nil {
		return nil, fmt.Errorf("set up: %w", err)
	}
	reqs, err := requests(ctx, h, env.base, runtimeCreds, env.idpURL)
	if err != nil {
		return nil, fmt.Errorf("prepare requests: %w", err)
	}
	reqs["noop"] = request{url: env.noopURL, body: []byte(`{}`), creds: runtimeCreds}
	return reqs, nil
}

// report prints the results as a table, each against the no-op floor,
// then the first error of each operation that had any, then how many
// audit records the runs wrote.
func report(out io.Writer, opts Options, backend string, results []Result, audited int64) error {
	if _, err := fmt.Fprintf(out, "behalf bench: %s; %d CPUs (GOMAXPROCS %d), %d concurrent clients, %s per operation in %d rounds, load generator in the same process\n\n",
		backend, runtime.NumCPU(), runtime.GOMAXPROCS(0), opts.Concurrency, opts.Duration, rounds); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	if _, err := fmt.Fprintln(tw, "operation\trequests/s\tp50\tp99\tof floor\tCPU per call\terrors\t"); err != nil {
		return err
	}
	var floor float64
	var vends int64
	for _, r := range results {
		if r.Operation == "noop" {
			floor = r.RPS()
		} else {
			vends += r.Requests - r.Errors
		}
		share := "-"
		if floor > 0 {
			share = fmt.Sprintf("%.0f%%", 100*r.RPS()/floor)
		}
		if _, err := fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n", titles[r.Operation], r.RPS(), ms(r.P50), ms(r.P99), share, micros(r.CPUPerCall()), r.Errors); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.FirstError != "" {
			if _, err := fmt.Fprintf(out, "\n%s: first of %d errors: %s", titles[r.Operation], r.Errors, r.FirstError); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintf(out, "\naudit records written during the measured runs: %d, for %d successful credential vends (warm-up calls are audited too)\n", audited, vends)
	return err
}

const (
	benchClientID     = "bench-agent"
	benchClientSecret = "bench-agent-secret" //nolint:gosec // G101: the benchmark's own development client, on loopback
)

// startIDP runs the development identity provider on loopback, so that the
// benchmark needs nothing but the behalf binary; the tests use a real
// provider (Dex) instead. Its tokens outlive any run.
func startIDP(ctx context.Context) (*httpServer, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	idp, err := devidp.New(devidp.Options{Issuer: "http://" + ln.Addr().String(), AccessTokenTTL: 24 * time.Hour,
		Clients: []devidp.Client{{ID: benchClientID, Secret: benchClientSecret}}})
	if err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	s := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }() // ErrServerClosed once the run is done
	return &httpServer{URL: idp.Issuer(), Server: s}, nil
}

// userJWT gets a user's ID token from the IdP with the password grant, as
// a user's application would get one by signing in.
func userJWT(ctx context.Context, issuer string) (string, error) {
	form := url.Values{"grant_type": {"password"}, "username": {"bench-user"}, "password": {"bench"}, "scope": {"openid"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(benchClientID, benchClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.IDToken == "" {
		return "", fmt.Errorf("the identity provider's password grant answered HTTP %d", res.StatusCode)
	}
	return tok.IDToken, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// micros formats a duration in whole microseconds.
func micros(d time.Duration) string { return fmt.Sprintf("%dµs", d.Microseconds()) }

// auditCount is the length of the audit chain.
func auditCount(ctx context.Context, st storage.Storage) (int64, error) {
	h, err := st.GetAuditHead(ctx)
	return h.Seq, err
}

// createDatabase makes a fresh PostgreSQL database for the run.
func createDatabase(ctx context.Context, admin string) (string, func() error, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("--postgres must be a postgres:// URL")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	// Unquoted, so PostgreSQL folds it: lower case from the start.
	name := "behalf_bench_" + strings.ToLower(rand.Text()[:12])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, errors.Join(fmt.Errorf("create database %s: %w", name, err), db.Close())
	}
	u.Path = "/" + name
	drop := func() error {
		_, err := db.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return errors.Join(err, db.Close())
	}
	return u.String(), drop, nil
}

// startNoop runs the floor's server on loopback: it reads the request and
// answers {} without any work of behalf's.
func startNoop(ctx context.Context) (*httpServer, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`)) // a failed write is the client's hang-up, seen on its side
	})}
	go func() { _ = s.Serve(ln) }() // ErrServerClosed once the run is done
	return &httpServer{URL: "http://" + ln.Addr().String() + "/", Server: s}, nil
}

type httpServer struct {
	URL string
	*http.Server
}

// otlpReceiver stands for a collector: it reads each OTLP/HTTP export and
// discards it, counting exports and bytes, at a cost far below a real
// collector's so that the figures show behalf's own.
type otlpReceiver struct {
	httpServer
	exports, bytes atomic.Int64
}

func startOTLPReceiver(ctx context.Context) (*otlpReceiver, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &otlpReceiver{}
	r.URL = "http://" + ln.Addr().String()
	r.Server = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, err := io.Copy(io.Discard, req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.exports.Add(1)
		r.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty export response: everything accepted
	})}
	go func() { _ = r.Serve(ln) }() // ErrServerClosed once the run is done
	return r, nil
}

// request is what one operation sends, again and again.
type request struct {
	url   string
	body  []byte
	creds aws.Credentials
}

// harness sends SigV4-signed requests the way an AWS SDK does: the body
// hashed and the request signed anew each time, over keep-alive
// connections.
type harness struct {
	client *http.Client
	signer *v4.Signer
	conc   int
}

func newHarness(concurrency int) *harness {
	t := &http.Transport{MaxIdleConns: concurrency * 2, MaxIdleConnsPerHost: concurrency * 2, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &harness{client: &http.Client{Transport: t, Timeout: 30 * time.Second}, signer: v4.NewSigner(), conc: concurrency}
}

// do sends one request and returns the status and body.
func (h *harness) do(ctx context.Context, r request) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(r.body)
	if err := h.signer.SignHTTP(ctx, r.creds, req, hex.EncodeToString(sum[:]), "bedrock-agentcore", region, time.Now()); err != nil {
		return 0, nil, err
	}
	res, err := h.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

// call sends a request and decodes a successful JSON answer into out.
func (h *harness) call(ctx context.Context, r request, out any) error {
	status, body, err := h.do(ctx, r)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("%s: HTTP %d: %s", r.url, status, body)
	}
	if out != nil && len(body) > 0 {
		return json.Unmarshal(body, out)
	}
	return nil
}

// run sends the request from h.conc workers for d and returns what it
// measured. A request sent before d is up is waited for and counted, so
// that no call is cut short: the time measured is until the last returns.
func (h *harness) run(ctx context.Context, r request, d time.Duration) sample {
	deadline := time.Now().Add(d)
	var requests, errs atomic.Int64
	var firstError sync.Once
	var firstErr string
	lat := make([][]time.Duration, h.conc)
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), processCPU()
	for w := range h.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<14)
			for t0 := time.Now(); t0.Before(deadline) && ctx.Err() == nil; t0 = time.Now() {
				status, body, err := h.do(ctx, r)
				requests.Add(1)
				if err != nil || status != http.StatusOK {
					errs.Add(1)
					firstError.Do(func() { firstErr = fmt.Sprintf("HTTP %d: %.200s (%v)", status, body, err) })
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	return sample{requests: requests.Load(), errors: errs.Load(), elapsed: time.Since(start), cpu: processCPU() - cpu0,
		latencies: slices.Concat(lat...), firstError: firstErr}
}

// processCPU is the CPU time this process has used, user and system: the
// server's, the load generator's and the runtime's, but not other
// processes' on a shared machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sample is what one or more stretches of load measured.
type sample struct {
	requests, errors int64
	elapsed          time.Duration
	cpu              time.Duration   // of the whole process, while it lasted
	latencies        []time.Duration // of the successful requests
	firstError       string
}

// add adds o's stretch of load to s.
func (s *sample) add(o sample) {
	s.requests += o.requests
	s.errors += o.errors
	s.elapsed += o.elapsed
	s.cpu += o.cpu
	s.latencies = append(s.latencies, o.latencies...)
	if s.firstError == "" {
		s.firstError = o.firstError
	}
}

// result summarises s as operation op's result.
func (s sample) result(op string, telemetry bool) Result {
	slices.Sort(s.latencies)
	r := Result{Operation: op, Telemetry: telemetry, Requests: s.requests, Errors: s.errors, Elapsed: s.elapsed, CPU: s.cpu, FirstError: s.firstError}
	if n := len(s.latencies); n > 0 {
		r.P50, r.P99 = s.latencies[n/2], s.latencies[min(n-1, n*99/100)]
	}
	return r
}

// setUp creates, as the admin, what the vend paths need: a workload
// identity, an API-key provider, a CustomOauth2 provider at the local IdP,
// and a runtime principal granted the workload.
func setUp(ctx context.Context, h *harness, base, issuer string) (aws.Credentials, error) {
	admin := aws.Credentials{AccessKeyID: adminID, SecretAccessKey: adminSecret}
	post := func(path string, in any, out any) error {
		body, _ := json.Marshal(in)
		return h.call(ctx, request{url: base + path, body: body, creds: admin}, out)
	}
	if err := post("/identities/CreateWorkloadIdentity", map[string]any{"name": "bench-agent", "allowedResourceOauth2ReturnUrls": []string{returnURL}}, nil); err != nil {
		return aws.Credentials{}, err
	}
	//nolint:gosec // G101: a made-up key for a throw-away server
	if err := post("/identities/CreateApiKeyCredentialProvider", map[string]any{"name": "bench-key", "apiKey": "bench-api-key-value"}, nil); err != nil {
		return aws.Credentials{}, err
	}
	if err := post("/identities/CreateOauth2CredentialProvider", map[string]any{ //nolint:gosec // G101: the benchmark's own development client
		"name": "bench-m2m", "credentialProviderVendor": "CustomOauth2",
		"oauth2ProviderConfigInput": map[string]any{"customOauth2ProviderConfig": map[string]any{
			"clientId": benchClientID, "clientSecret": benchClientSecret,
			"oauthDiscovery": map[string]any{"discoveryUrl": issuer + "/.well-known/openid-configuration"},
		}},
	}, nil); err != nil {
		return aws.Credentials{}, err
	}
	var principal struct {
		ID     string `json:"accessKeyId"`
		Secret string `json:"secretAccessKey"`
	}
	if err := post("/behalf/CreatePrincipal", map[string]any{"role": "runtime", "workloads": []string{"bench-agent"}}, &principal); err != nil {
		return aws.Credentials{}, err
	}
	return aws.Credentials{AccessKeyID: principal.ID, SecretAccessKey: principal.Secret}, nil
}

// requests prepares each operation's request, signed as the runtime
// principal, warms the M2M cache with one call, and connects a user to the
// OAuth2 provider through the USER_FEDERATION flow.
func requests(ctx context.Context, h *harness, base string, creds aws.Credentials, issuer string) (map[string]request, error) {
	user, err := userJWT(ctx, issuer)
	if err != nil {
		return nil, err
	}
	jwtBody, _ := json.Marshal(map[string]string{"workloadName": "bench-agent", "userToken": user})
	var wat struct {
		Token string `json:"workloadAccessToken"`
	}
	if err := h.call(ctx, request{url: base + "/identities/GetWorkloadAccessTokenForJWT", body: jwtBody, creds: creds}, &wat); err != nil {
		return nil, err
	}
	apiKeyBody, _ := json.Marshal(map[string]string{"workloadIdentityToken": wat.Token, "resourceCredentialProviderName": "bench-key"})
	m2mBody, _ := json.Marshal(map[string]any{"workloadIdentityToken": wat.Token, "resourceCredentialProviderName": "bench-m2m",
		"oauth2Flow": "M2M", "scopes": []string{}})
	reqs := map[string]request{
		"jwt":    {url: base + "/identities/GetWorkloadAccessTokenForJWT", body: jwtBody, creds: creds},
		"apikey": {url: base + "/identities/api-key", body: apiKeyBody, creds: creds},
		"m2m":    {url: base + "/identities/oauth2/token", body: m2mBody, creds: creds},
	}
	for _, op := range []string{"apikey", "m2m"} {
		if err := h.call(ctx, reqs[op], nil); err != nil {
			return nil, err
		}
	}
	if reqs["user"], err = connectUser(ctx, h, base, creds); err != nil {
		return nil, fmt.Errorf("connect a user through USER_FEDERATION: %w", err)
	}
	return reqs, nil
}

// returnURL is where behalf sends the user's browser after consent. Nothing
// listens there: the benchmark's browser stops at the redirect.
const returnURL = "http://127.0.0.1:9/bench-return"

// connectUser runs USER_FEDERATION once as an agent, a user and the
// application behind the return URL would: the agent's call starts a
// session; the user consents at the development IdP and their browser goes
// through behalf's callback; the application completes the session for the
// user; the agent polls with the session URI and gets the token. It
// returns the agent's request, which from then on is served from the
// user's stored connection.
func connectUser(ctx context.Context, h *harness, base string, creds aws.Credentials) (request, error) {
	forUser, _ := json.Marshal(map[string]string{"workloadName": "bench-agent", "userId": benchUser})
	var wat struct {
		Token string `json:"workloadAccessToken"`
	}
	if err := h.call(ctx, request{url: base + "/identities/GetWorkloadAccessTokenForUserId", body: forUser, creds: creds}, &wat); err != nil {
		return request{}, err
	}
	input := map[string]any{"workloadIdentityToken": wat.Token, "resourceCredentialProviderName": "bench-m2m",
		"oauth2Flow": "USER_FEDERATION", "scopes": []string{"openid"}, "resourceOauth2ReturnUrl": returnURL}
	body, _ := json.Marshal(input)
	user := request{url: base + "/identities/oauth2/token", body: body, creds: creds}
	var started struct {
		AuthorizationURL string `json:"authorizationUrl"`
		SessionURI       string `json:"sessionUri"`
	}
	if err := h.call(ctx, user, &started); err != nil {
		return request{}, err
	}
	if started.AuthorizationURL == "" {
		return request{}, errors.New("the first call did not start an authorization session")
	}
	if err := consent(ctx, started.AuthorizationURL); err != nil {
		return request{}, err
	}
	complete, _ := json.Marshal(map[string]any{"sessionUri": started.SessionURI, "userIdentifier": map[string]string{"userId": benchUser}})
	if err := h.call(ctx, request{url: base + "/identities/CompleteResourceTokenAuth", body: complete, creds: creds}, nil); err != nil {
		return request{}, err
	}
	input["sessionUri"] = started.SessionURI
	poll, _ := json.Marshal(input)
	var got struct {
		AccessToken string `json:"accessToken"`
	}
	if err := h.call(ctx, request{url: user.url, body: poll, creds: creds}, &got); err != nil {
		return request{}, err
	}
	if got.AccessToken == "" {
		return request{}, errors.New("no token after the session was completed")
	}
	if err := h.call(ctx, user, &got); err != nil {
		return request{}, fmt.Errorf("the stored token is not served: %w", err)
	}
	if got.AccessToken == "" {
		return request{}, errors.New("the stored token is not served: no access token")
	}
	return user, nil
}

const benchUser = "bench-user"

var formTokenPattern = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// consent plays the user's browser: it opens the authorization URL at the
// development IdP, allows the request, and follows the redirects through
// behalf's callback up to the return URL.
func consent(ctx context.Context, authURL string) error {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), returnURL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	page, err := browse(ctx, browser, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	m := formTokenPattern.FindSubmatch(page)
	if m == nil {
		return errors.New("the identity provider showed no consent form")
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return err
	}
	form := url.Values{"form_token": {string(m[1])}, "username": {benchUser}, "action": {"allow"}}
	_, err = browse(ctx, browser, http.MethodPost, u.Scheme+"://"+u.Host+"/consent", form)
	return err
}

// browse sends a browser's request and returns the page, or nil for the
// redirect to the return URL.
func browse(ctx context.Context, browser *http.Client, method, target string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := browser.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = res.Body.Close() }() // read only: Close loses nothing
	page, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	switch {
	case err != nil:
		return nil, err
	case res.StatusCode == http.StatusFound && strings.HasPrefix(res.Header.Get("Location"), returnURL):
		return nil, nil
	case res.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s %s: HTTP %d: %.200s", method, res.Request.URL.Redacted(), res.StatusCode, page)
	}
	return page, nil
}
