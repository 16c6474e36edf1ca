package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/orbit/orbit/internal/testserver"
)

// The billing dashboard (server/dashboard) driven by a real headless
// Chromium against a real orbitd: sign in, balance, usage, transaction
// paging and filters, a top-up through the development checkout, the
// invoice, a phone-sized layout, sign out. Screenshots of each step are
// taken; with ORBIT_SCREENSHOTS=1 they are written to docs/ (referenced by
// README.md).

const (
	chromiumPath   = "/usr/bin/chromium"
	screenshotsDir = "../docs"
)

// newBrowser starts headless Chromium with a fresh profile and returns a tab
// context plus a func that reports JavaScript exceptions and console errors
// seen so far.
func newBrowser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the dashboard browser tests need Chromium at %s (%v): run `make chromium` to install it", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var mu sync.Mutex
	var problems []string
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				problems = append(problems, "console.error: "+strings.Join(parts, " "))
			}
		}
	}))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// Start the browser now, without a deadline (a deadline on the first Run
	// would bound the browser's whole life).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// dashUSD formats micros as the dashboard does: exact, 2 to 6 decimals.
func dashUSD(micros int64) string {
	sign := "$"
	if micros < 0 {
		sign, micros = "−$", -micros
	}
	whole, frac := micros/1_000_000, fmt.Sprintf("%06d", micros%1_000_000)
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	w := fmt.Sprint(whole)
	for i := len(w) - 3; i > 0; i -= 3 {
		w = w[:i] + "," + w[i:]
	}
	return sign + w + "." + frac
}

func TestDashboardStaticFiles(t *testing.T) {
	s := testserver.Start(t)
	for _, c := range []struct{ path, ctype, cache string }{
		{"/", "text/html; charset=utf-8", "no-store"},
		{"/dashboard/", "text/html; charset=utf-8", "no-store"},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "no-cache"},
		{"/dashboard/style.css", "text/css; charset=utf-8", "no-cache"},
		{"/dashboard/favicon.svg", "image/svg+xml", "no-cache"},
	} {
		resp, err := http.Get(s.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype || resp.Header.Get("Cache-Control") != c.cache {
			t.Errorf("GET %s: %d %q %q, want 200 %q %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), c.ctype, c.cache)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", c.path)
		}
	}
	for _, p := range []string{"/dashboard/nope.js", "/dashboard/static/app.js", "/index.html"} {
		resp, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	resp, err := http.Post(s.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q, want 405 with Allow: GET, HEAD (the dashboard is read-only)", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestDashboardBrowser(t *testing.T) {
	ctx, problems := newBrowser(t)
	s := testserver.Start(t)
	const fund = 150_000_000
	org := s.MustOrg(t, "Acme Messaging", fund)
	c := s.Key(org.Key)

	// 36 ledger entries: the funding adjustment and 35 charges on 3 channels.
	spent := int64(0)
	n := 0
	for _, ch := range []struct {
		channel string
		count   int
		micros  int64
	}{{"sms", 20, 8_400}, {"voice", 10, 52_500}, {"llm", 5, 31_250}} {
		for i := 0; i < ch.count; i++ {
			n++
			c.Do("POST", "/api/v1/billing/charges", map[string]any{
				"reference": fmt.Sprintf("%s_msg_%04d", ch.channel, n), "channel": ch.channel, "amount_micros": ch.micros,
			}).Expect(t, 201)
			spent += ch.micros
		}
	}
	const entries = 36

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' | errors: ' + [...document.querySelectorAll('[role=alert]')].filter(e => !e.hidden).map(e => e.id + '=' + e.textContent).join('; ')`))
			t.Fatalf("%s: %v\npage: %s\nbrowser problems: %q", what, err, state, problems())
		}
	}
	eval := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	text := func(id string) string {
		t.Helper()
		v, _ := eval(`document.getElementById(` + quoteJS(id) + `).textContent`).(string)
		return strings.TrimSpace(v)
	}
	waitJS := func(what, cond string) {
		t.Helper()
		// Poll from Go: an in-page poll dies with the page when it navigates.
		deadline := time.Now().Add(15 * time.Second)
		for {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`!!(`+cond+`)`))
			cancel()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' | errors: ' + [...document.querySelectorAll('[role=alert]')].filter(e => !e.hidden).map(e => e.id + '=' + e.textContent).join('; ')`))
				t.Fatalf("timed out waiting for %s (%s; last error %v)\npage: %s\nbrowser problems: %q", what, cond, err, state, problems())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	shot := func(name string, action chromedp.Action[[]byte]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, action)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if len(png) < 5000 {
			t.Fatalf("screenshot %s is only %d bytes", name, len(png))
		}
		// The screenshots in docs/ are refreshed only when asked
		// (ORBIT_SCREENSHOTS=1), so a test run leaves the tree unchanged.
		dir := t.TempDir()
		if os.Getenv("ORBIT_SCREENSHOTS") != "" {
			dir = screenshotsDir
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(tbody string) int {
		t.Helper()
		return int(eval(`document.querySelectorAll('#` + tbody + ` tr[data-id]').length`).(float64))
	}
	ids := func() []string {
		t.Helper()
		raw := eval(`[...document.querySelectorAll('#tx-rows tr[data-id]')].map(r => r.dataset.id)`).([]any)
		out := make([]string, len(raw))
		for i, v := range raw {
			out[i] = v.(string)
		}
		return out
	}

	step("desktop viewport", chromedp.EmulateViewport(1280, 1180))

	// Sign in: a wrong key shows the API's error message; the right one opens
	// the dashboard and is kept in sessionStorage only.
	step("open dashboard", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.ID("apikey")))
	step("wrong key", chromedp.SendKeys(chromedp.ID("apikey"), "dv_live_sk_not_a_real_key"), chromedp.Click(chromedp.ID("signin-submit")))
	waitJS("sign-in error", `!document.getElementById('signin-error').hidden`)
	if got := text("signin-error"); got != "invalid or revoked API key" {
		t.Errorf("sign-in error shows %q, want the API's error.message", got)
	}
	step("sign in", chromedp.Evaluate[chromedp.Void](`document.getElementById('apikey').value = ''`), chromedp.SendKeys(chromedp.ID("apikey"), org.Key),
		chromedp.Click(chromedp.ID("signin-submit")), chromedp.WaitVisible(chromedp.ID("app")))
	if eval(`sessionStorage.getItem('orbit.apiKey')`) != org.Key || eval(`localStorage.length`).(float64) != 0 || eval(`document.cookie`) != "" {
		t.Errorf("the key must be in sessionStorage only")
	}

	// Balance.
	balance := int64(fund) - spent
	waitJS("balance", `document.getElementById('balance-usd').textContent.startsWith('$')`)
	if got := text("balance-usd"); got != dashUSD(balance) {
		t.Errorf("balance shows %q, want %q", got, dashUSD(balance))
	}
	if got := text("balance-available"); got != dashUSD(balance) {
		t.Errorf("available shows %q, want %q", got, dashUSD(balance))
	}
	if got := text("balance-reserved"); got != "$0.00" {
		t.Errorf("reserved shows %q", got)
	}
	if got := text("balance-outbound"); got != "Active" {
		t.Errorf("outbound shows %q", got)
	}

	// Usage: one chart per channel and the by-channel table; the 7/30/90 switch.
	waitJS("usage charts", `document.querySelectorAll('#usage-charts figure svg rect').length > 0 && document.querySelectorAll('#usage-rows tr').length === 3`)
	if got := eval(`document.querySelectorAll('#usage-charts figure').length`).(float64); got != 3 {
		t.Errorf("%v usage charts, want 3", got)
	}
	if got := eval(`document.querySelectorAll('#usage-charts figure:first-child svg rect').length`).(float64); got != 30 {
		t.Errorf("30-day chart has %v bars, want 30", got)
	}
	step("usage 7 days", chromedp.Click(chromedp.CSS(`.seg[data-days="7"]`)))
	waitJS("7-day chart", `document.querySelector('.seg[data-days="7"]').getAttribute('aria-pressed') === 'true' && document.querySelectorAll('#usage-charts figure:first-child svg rect').length === 7`)
	step("usage 90 days", chromedp.Click(chromedp.CSS(`.seg[data-days="90"]`)))
	waitJS("90-day chart", `document.querySelectorAll('#usage-charts figure:first-child svg rect').length === 90`)
	step("usage 30 days", chromedp.Click(chromedp.CSS(`.seg[data-days="30"]`)))
	waitJS("30-day chart", `document.querySelectorAll('#usage-charts figure:first-child svg rect').length === 30`)
	if got := text("usage-summary"); !strings.Contains(got, dashUSD(spent)) {
		t.Errorf("usage summary %q does not show the total %s", got, dashUSD(spent))
	}

	// Accessibility basics: every input has a label, every control is
	// reachable by keyboard, errors are live regions.
	if got := eval(`[...document.querySelectorAll('input, select')].filter(e => e.labels.length === 0).map(e => e.id)`).([]any); len(got) != 0 {
		t.Errorf("inputs without a label: %v", got)
	}
	if got := eval(`[...document.querySelectorAll('button, a[href], input, select')].filter(e => e.tabIndex < 0).map(e => e.id || e.textContent)`).([]any); len(got) != 0 {
		t.Errorf("controls not reachable by keyboard: %v", got)
	}
	if got := eval(`[...document.querySelectorAll('.error')].filter(e => !e.getAttribute('aria-live') && e.getAttribute('role') !== 'alert').map(e => e.id)`).([]any); len(got) != 0 {
		t.Errorf("error regions that are not live: %v", got)
	}
	step("top of page", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	shot("dashboard-balance.png", chromedp.CaptureScreenshot())

	// Transactions: page 1 (30), Next (6), Previous (the same 30); no entry
	// repeated or skipped.
	waitJS("transactions", `document.querySelectorAll('#tx-rows tr[data-id]').length === 30 && !document.getElementById('tx-next').disabled`)
	page1 := ids()
	if eval(`document.getElementById('tx-prev').disabled`) != true {
		t.Errorf("Previous is enabled on page 1")
	}
	shot("dashboard-transactions.png", chromedp.Screenshot(chromedp.ID("tx-card")))
	step("next page", chromedp.Click(chromedp.ID("tx-next")))
	waitJS("page 2", `document.getElementById('tx-page').textContent === 'Page 2' && document.querySelectorAll('#tx-rows tr[data-id]').length === 6`)
	page2 := ids()
	seen := map[string]bool{}
	for _, id := range append(append([]string(nil), page1...), page2...) {
		if seen[id] {
			t.Errorf("entry %s on both pages", id)
		}
		seen[id] = true
	}
	if len(seen) != entries {
		t.Errorf("%d distinct entries over 2 pages, want %d", len(seen), entries)
	}
	if eval(`document.getElementById('tx-next').disabled`) != true {
		t.Errorf("Next is enabled on the last page")
	}
	// Previous with the keyboard: focus it and press Enter.
	step("previous page (keyboard)", chromedp.Focus(chromedp.ID("tx-prev")), chromedp.KeyEvent("\r"))
	waitJS("page 1 again", `document.getElementById('tx-page').textContent === 'Page 1' && document.querySelectorAll('#tx-rows tr[data-id]').length === 30`)
	if got := ids(); strings.Join(got, ",") != strings.Join(page1, ",") {
		t.Errorf("Previous shows another first page")
	}

	// Filters: by type, by type and channel, and a bad channel shows the
	// API's error message.
	step("filter adjustments", chromedp.SetValue(chromedp.ID("tx-type"), "adjustment"), chromedp.Click(chromedp.ID("tx-apply")))
	waitJS("adjustments only", `document.querySelectorAll('#tx-rows tr[data-id]').length === 1 && document.querySelector('#tx-rows tr[data-id]').dataset.type === 'adjustment'`)
	step("filter voice spends", chromedp.SetValue(chromedp.ID("tx-type"), "spend"), chromedp.SendKeys(chromedp.ID("tx-channel"), "voice"), chromedp.Click(chromedp.ID("tx-apply")))
	waitJS("voice spends", `document.querySelectorAll('#tx-rows tr[data-id]').length === 10 && [...document.querySelectorAll('#tx-rows tr[data-id]')].every(r => r.dataset.type === 'spend' && r.children[2].textContent === 'voice') && document.getElementById('tx-next').disabled`)
	bad := c.Do("GET", "/api/v1/billing/transactions?limit=30&type=spend&channel="+url.QueryEscape("Bad Channel"), nil).Expect(t, 400)
	wantMsg := bad.JSON["error"].(map[string]any)["message"].(string)
	step("bad channel", chromedp.SetValue(chromedp.ID("tx-channel"), "Bad Channel"), chromedp.Click(chromedp.ID("tx-apply")))
	waitJS("bad channel error", `!document.getElementById('tx-error').hidden`)
	if got := text("tx-error"); got != wantMsg {
		t.Errorf("filter error shows %q, want the API's message %q", got, wantMsg)
	}
	step("clear filters", chromedp.Click(chromedp.ID("tx-clear")))
	waitJS("unfiltered", `document.querySelectorAll('#tx-rows tr[data-id]').length === 30 && document.getElementById('tx-error').hidden`)

	// Top-up: an amount out of range shows the API's message; $25 goes to
	// the development checkout, Pay redirects back, and the new balance and
	// the receipt show.
	step("top-up too small", chromedp.SetValue(chromedp.ID("topup-amount"), "1"), chromedp.Click(chromedp.ID("topup-submit")))
	waitJS("top-up error", `!document.getElementById('topup-error').hidden`)
	if got := text("topup-error"); !strings.Contains(got, "500") {
		t.Errorf("top-up error shows %q, want the API's message about 500..1,000,000 cents", got)
	}
	if got := rows("inv-rows"); got != 0 {
		t.Errorf("%d invoices before any top-up", got)
	}
	step("top-up $25", chromedp.SetValue(chromedp.ID("topup-amount"), "25.00"), chromedp.Click(chromedp.ID("topup-submit")))
	waitJS("checkout page", `location.pathname.startsWith('/dev/checkout/') && !!document.getElementById('pay')`)
	if got := text("amount"); got != "USD 25.00" {
		t.Errorf("checkout amount %q, want USD 25.00", got)
	}
	step("pay", chromedp.Click(chromedp.ID("pay")))
	waitJS("back on the dashboard", `location.pathname === '/' && location.search === '' && !!document.getElementById('notice') && !document.getElementById('notice').hidden`)
	balance += 25_000_000
	waitJS("new balance", `document.getElementById('balance-usd').textContent === `+quoteJS(dashUSD(balance)))
	waitJS("invoice", `document.querySelectorAll('#inv-rows tr[data-id]').length === 1`)
	inv := eval(`(() => { const r = document.querySelector('#inv-rows tr[data-id]'); return {number: r.children[0].textContent, status: r.children[2].textContent, amount: r.children[3].textContent, pdf: r.querySelector('a.pdf').href}; })()`).(map[string]any)
	if inv["status"] != "paid" || inv["amount"] != "$25.00" || !strings.HasPrefix(inv["number"].(string), "INV-") {
		t.Errorf("invoice row %v", inv)
	}
	pdf, _ := inv["pdf"].(string)
	if !strings.HasPrefix(pdf, s.URL+"/dev/receipts/"+org.ID+"/") {
		t.Errorf("invoice PDF link %q", pdf)
	} else if resp, err := http.Get(pdf); err != nil || resp.StatusCode != 200 {
		t.Errorf("invoice PDF link %s: %v %v", pdf, resp, err)
	} else {
		resp.Body.Close()
	}
	waitJS("top-up in transactions", `document.querySelector('#tx-rows tr[data-id]').dataset.type === 'topup'`)
	step("top of page", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	shot("dashboard-topup.png", chromedp.CaptureScreenshot())

	// A phone (390 px wide): no horizontal scrolling, tables stacked.
	step("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	waitJS("phone layout", `document.documentElement.clientWidth === 390`)
	if got := eval(`document.documentElement.scrollWidth`).(float64); got > 390 {
		t.Errorf("the page is %v px wide at 390 px: it scrolls sideways", got)
	}
	if got := eval(`getComputedStyle(document.querySelector('#tx-rows tr')).display`); got != "block" {
		t.Errorf("transaction rows are %v on a phone, want stacked blocks", got)
	}
	shot("dashboard-phone.png", chromedp.CaptureScreenshot())
	step("desktop viewport", chromedp.EmulateViewport(1280, 1180))

	// An operator hold shows as a warning with its reason and details.
	s.Admin().Do("POST", "/admin/v1/orgs/"+org.ID+"/pause", map[string]any{"reason": "KYC review"}).Expect(t, 200)
	step("refresh", chromedp.Click(chromedp.ID("refresh")))
	waitJS("paused warning", `!document.getElementById('paused').hidden && document.getElementById('balance-outbound').textContent === 'Paused'`)
	if got := text("paused-reason"); !strings.Contains(got, "operator_hold") || !strings.Contains(got, "KYC review") {
		t.Errorf("paused warning says %q", got)
	}
	if got := eval(`getComputedStyle(document.getElementById('paused')).backgroundColor`); got == "rgba(0, 0, 0, 0)" {
		t.Errorf("the paused warning has no warning style")
	}
	s.Admin().Do("POST", "/admin/v1/orgs/"+org.ID+"/unpause", map[string]any{}).Expect(t, 200)
	step("refresh", chromedp.Click(chromedp.ID("refresh")))
	waitJS("unpaused", `document.getElementById('paused').hidden && document.getElementById('balance-outbound').textContent === 'Active'`)

	// Sign out clears the key.
	step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("apikey")))
	if eval(`sessionStorage.getItem('orbit.apiKey')`) != nil {
		t.Errorf("sign out left the key in sessionStorage")
	}
	if got := rows("tx-rows"); got != 0 {
		t.Errorf("sign out left %d transactions in the page", got)
	}

	if p := problems(); len(p) > 0 {
		t.Errorf("JavaScript problems in the dashboard: %q", p)
	}
}

// quoteJS quotes s as a JavaScript string literal.
func quoteJS(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}
