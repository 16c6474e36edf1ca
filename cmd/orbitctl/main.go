// Command orbitctl is the operator CLI of Orbit, built on the Go SDK
// (github.com/orbit/orbit/client): orgs, keys, adjustments, grants, pauses,
// rate cards, FX rates, audit and cluster membership through the admin API,
// and the wallet, rates, top-ups and reservations of one org through its
// API key. `orbitctl help` lists every command; `orbitctl demo`
// makes a funded org and prints a ready-to-paste curl.
//
// Exit status: 0 on success, 1 when the server refuses or cannot be
// reached, 2 on a usage error (unknown command, missing argument, bad flag,
// missing credential).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orbit/orbit/client"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2

	defaultURL = "http://127.0.0.1:8080"
	// callTimeout bounds each API call.
	callTimeout = 30 * time.Second
)

// progName is how the user ran orbitctl (bin/orbitctl from the repository),
// for the commands its output suggests.
var progName = "orbitctl"

func main() {
	progName = os.Args[0]
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole CLI: it parses args, runs one command and returns the
// exit status. Tests call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	return runWithInput(args, os.Stdin, stdout, stderr)
}

// runWithInput is run with stdin given (read by 'rates set -').
func runWithInput(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return a.main(args)
}

// globals are the flags every command accepts, anywhere on the line.
type globals struct {
	url        string
	adminToken string
	apiKey     string
	json       bool
}

// app is one run of the CLI.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	g              globals
	// bodies are the response bodies of this run, in order (for --json).
	bodies [][]byte
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct {
	msg string
	cmd *command // the command whose usage to show, or nil
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), cmd: cmd}
}

// strValue is a string flag that does not reset its variable when defined
// (the same global is defined on two flag sets) and never shows a secret as
// its default.
type strValue struct{ p *string }

func (v strValue) String() string { return "" }
func (v strValue) Set(s string) error {
	*v.p = s
	return nil
}

type boolValue struct{ p *bool }

func (v boolValue) String() string { return "" }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.p = b
	return nil
}
func (v boolValue) IsBoolFlag() bool { return true }

func (a *app) defineGlobals(fs *flag.FlagSet) {
	fs.Var(strValue{&a.g.url}, "url", "server address (env ORBIT_URL, default "+defaultURL+")")
	fs.Var(strValue{&a.g.adminToken}, "admin-token", "operator token (env ORBIT_ADMIN_TOKEN, else the admin-token file orbitd writes in its data directory)")
	fs.Var(strValue{&a.g.apiKey}, "api-key", "org API key for org commands (env ORBIT_API_KEY)")
	fs.Var(boolValue{&a.g.json}, "json", "print the server's raw JSON")
}

func (a *app) main(args []string) int {
	top := flag.NewFlagSet("orbitctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	a.defineGlobals(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.printHelp(a.stdout)
			return exitOK
		}
		return a.fail(usagef(nil, "%v", err))
	}
	rest := top.Args()
	if len(rest) == 0 {
		a.printHelp(a.stderr)
		return exitUsage
	}
	if rest[0] == "help" {
		return a.help(rest[1:])
	}
	cmd, n, err := findCommand(rest)
	if err != nil {
		return a.fail(err)
	}
	if err := a.runCommand(cmd, rest[n:]); err != nil {
		return a.fail(err)
	}
	return exitOK
}

// findCommand matches the longest command path at the start of args and
// returns it with the number of words it took.
func findCommand(args []string) (*command, int, error) {
	var best *command
	bestN := 0
	for i := range commands {
		c := &commands[i]
		words := strings.Fields(c.path)
		if len(words) > len(args) || len(words) <= bestN {
			continue
		}
		match := true
		for j, w := range words {
			if args[j] != w {
				match = false
				break
			}
		}
		if match {
			best, bestN = c, len(words)
		}
	}
	if best != nil {
		return best, bestN, nil
	}
	if subs := subcommands(args[0]); len(subs) > 0 {
		if len(args) == 1 {
			return nil, 0, usagef(nil, "%s needs a subcommand: %s", args[0], strings.Join(subs, ", "))
		}
		return nil, 0, usagef(nil, "unknown command %q: %s has %s", args[0]+" "+args[1], args[0], strings.Join(subs, ", "))
	}
	return nil, 0, usagef(nil, "unknown command %q", args[0])
}

// subcommands lists the second words of the commands in a group.
func subcommands(group string) []string {
	var out []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.path, " "); ok && g == group {
			out = append(out, sub)
		}
	}
	return out
}

func (a *app) runCommand(cmd *command, args []string) error {
	fs := flag.NewFlagSet("orbitctl "+cmd.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.defineGlobals(fs)
	var runFn runFunc
	if cmd.define != nil {
		runFn = cmd.define(fs)
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.printCommandHelp(a.stdout, cmd)
			return nil
		}
		return usagef(cmd, "%v", err)
	}
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		switch {
		case cmd.minArgs == cmd.maxArgs && cmd.minArgs == 0:
			return usagef(cmd, "%s takes no arguments, got %q", cmd.path, strings.Join(pos, " "))
		case len(pos) < cmd.minArgs:
			return usagef(cmd, "%s: missing %s", cmd.path, cmd.args)
		default:
			return usagef(cmd, "%s: too many arguments: %q", cmd.path, strings.Join(pos, " "))
		}
	}
	if err := a.resolveURL(); err != nil {
		return err
	}
	ctx := context.Background()
	return runFn(a, ctx, pos)
}

// parseInterleaved parses flags placed before, between and after positional
// arguments (the standard flag package stops at the first positional), and
// takes a negative number as a positional argument, not a flag.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		for len(args) > 0 && (!strings.HasPrefix(args[0], "-") || args[0] == "-" || isNumber(args[0])) {
			pos = append(pos, args[0])
			args = args[1:]
		}
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		args = rest
	}
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// resolveURL fills --url from ORBIT_URL or the default and checks it.
func (a *app) resolveURL() error {
	if a.g.url == "" {
		a.g.url = a.getenv("ORBIT_URL")
	}
	if a.g.url == "" {
		a.g.url = defaultURL
	}
	a.g.url = strings.TrimRight(a.g.url, "/")
	u, err := url.Parse(a.g.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef(nil, "--url %q: want http://host:port or https://host", a.g.url)
	}
	return nil
}

func (a *app) observe(_ *http.Response, body []byte) { a.bodies = append(a.bodies, body) }

func (a *app) newClient(opts ...client.Option) *client.Client {
	opts = append([]client.Option{client.WithTimeout(callTimeout), client.WithResponseObserver(a.observe)}, opts...)
	return client.New(a.g.url, opts...)
}

// adminClient returns a client with the admin token from --admin-token,
// ORBIT_ADMIN_TOKEN, or the file orbitd writes on first start.
func (a *app) adminClient() (*client.Client, error) {
	tok := a.g.adminToken
	if tok == "" {
		tok = a.getenv("ORBIT_ADMIN_TOKEN")
	}
	if tok == "" {
		var err error
		if tok, err = a.tokenFromFile(); err != nil {
			return nil, err
		}
	}
	return a.newClient(client.WithAdminToken(tok)), nil
}

// hasAdminToken reports whether adminClient would find a token.
func (a *app) hasAdminToken() bool {
	if a.g.adminToken != "" || a.getenv("ORBIT_ADMIN_TOKEN") != "" {
		return true
	}
	_, err := a.tokenFromFile()
	return err == nil
}

// apiKey returns the org API key from --api-key or ORBIT_API_KEY, or "".
func (a *app) apiKey() string {
	if a.g.apiKey != "" {
		return a.g.apiKey
	}
	return a.getenv("ORBIT_API_KEY")
}

// tokenFromFile reads $ORBIT_DATA_DIR/admin-token, else ./data/admin-token.
func (a *app) tokenFromFile() (string, error) {
	var paths []string
	if d := a.getenv("ORBIT_DATA_DIR"); d != "" {
		paths = append(paths, filepath.Join(d, "admin-token"))
	}
	paths = append(paths, filepath.Join("data", "admin-token"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", usagef(nil, "read admin token: %v", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	}
	return "", usagef(nil, "no admin token: pass --admin-token, set ORBIT_ADMIN_TOKEN, or run where orbitd keeps its data (%s)", strings.Join(paths, " or "))
}

// orgClient returns a client with the org API key.
func (a *app) orgClient() (*client.Client, error) {
	key := a.apiKey()
	if key == "" {
		return nil, usagef(nil, "no API key: pass --api-key or set ORBIT_API_KEY (orbitctl keys create ORG makes one)")
	}
	return a.newClient(client.WithAPIKey(key)), nil
}

// fail reports err and returns the exit status for it.
func (a *app) fail(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "orbitctl: %s\n", ue.msg)
		if ue.cmd != nil {
			fmt.Fprintf(a.stderr, "usage: orbitctl %s\n", ue.cmd.usage())
			fmt.Fprintf(a.stderr, "Run 'orbitctl help %s' for details.\n", ue.cmd.path)
		} else {
			fmt.Fprintln(a.stderr, "Run 'orbitctl help' for the list of commands.")
		}
		return exitUsage
	}
	if e, ok := client.AsError(err); ok {
		if a.g.json && len(a.bodies) > 0 {
			a.printJSON(a.bodies[len(a.bodies)-1])
		}
		fmt.Fprintf(a.stderr, "orbitctl: error %s (HTTP %d): %s\n", e.Code, e.Status, e.Message)
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(a.stderr, "  %s: %v\n", k, detail(e.Details[k]))
		}
		if e.RequestID != "" {
			fmt.Fprintf(a.stderr, "  request id: %s\n", e.RequestID)
		}
		return exitFail
	}
	fmt.Fprintf(a.stderr, "orbitctl: %v\n", err)
	if errors.Is(err, syscall.ECONNREFUSED) {
		fmt.Fprintf(a.stderr, "Is orbitd running at %s? (set --url or ORBIT_URL)\n", a.g.url)
	}
	return exitFail
}

func detail(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(v)
}

func (a *app) help(args []string) int {
	if len(args) == 0 {
		a.printHelp(a.stdout)
		return exitOK
	}
	cmd, n, err := findCommand(args)
	if err != nil {
		return a.fail(err)
	}
	if n != len(args) {
		return a.fail(usagef(nil, "unknown command %q", strings.Join(args, " ")))
	}
	a.printCommandHelp(a.stdout, cmd)
	return exitOK
}

func (a *app) printHelp(w io.Writer) {
	fmt.Fprint(w, `orbitctl: operator CLI for the Orbit billing engine

Usage:
  orbitctl [global flags] COMMAND [ARGS] [flags]

Global flags (accepted anywhere on the line):
  --url URL            server address (env ORBIT_URL, default `+defaultURL+`)
  --admin-token TOKEN  operator token for admin commands (env ORBIT_ADMIN_TOKEN;
                       else the file $ORBIT_DATA_DIR/admin-token or ./data/admin-token
                       that orbitd writes on first start)
  --api-key KEY        org API key for org commands (env ORBIT_API_KEY)
  --json               print the server's raw JSON instead of tables
`)
	// Usages up to helpColumn characters share a column; a longer one gets
	// its own line, with its summary on the next.
	const helpColumn = 44
	width := 0
	for i := range commands {
		if n := len(commands[i].usage()); n <= helpColumn {
			width = max(width, n)
		}
	}
	for _, group := range []string{groupAdmin, groupOrg, groupOther} {
		fmt.Fprintf(w, "\n%s:\n", group)
		for i := range commands {
			c := &commands[i]
			switch {
			case c.group != group:
			case len(c.usage()) > width:
				fmt.Fprintf(w, "  %s\n  %-*s  %s\n", c.usage(), width, "", c.summary)
			default:
				fmt.Fprintf(w, "  %-*s  %s\n", width, c.usage(), c.summary)
			}
		}
	}
	fmt.Fprint(w, `
Money is shown in USD with 4 decimals and in micros (1 USD = 1,000,000 micros).
Exit status: 0 success, 1 API error or server unreachable, 2 usage error.
`)
}

func (a *app) printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "usage: orbitctl %s\n\n%s\n", cmd.usage(), cmd.summary)
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.help)
	}
	fs := flag.NewFlagSet(cmd.path, flag.ContinueOnError)
	if cmd.define != nil {
		cmd.define(fs)
	}
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprintln(w, "\nGlobal flags --url, --admin-token, --api-key and --json apply too; see 'orbitctl help'.")
}
