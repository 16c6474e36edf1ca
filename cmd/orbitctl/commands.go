package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/orbit/orbit/client"
)

// Help groups.
const (
	groupAdmin = "Operator commands (admin token)"
	groupOrg   = "Org commands (API key)"
	groupOther = "Other"
)

// runFunc runs a command with its positional arguments, after its flags
// were parsed.
type runFunc func(a *app, ctx context.Context, args []string) error

// command is one orbitctl command.
type command struct {
	path    string // "orgs create"
	args    string // positional arguments and flags, for the usage line
	summary string
	help    string // more text for 'orbitctl help CMD'
	group   string
	minArgs int
	maxArgs int // -1: any number
	// define defines the command's flags on fs and returns its runner,
	// which reads the flags' values once fs was parsed.
	define func(fs *flag.FlagSet) runFunc
}

func (c *command) usage() string {
	if c.args == "" {
		return c.path
	}
	return c.path + " " + c.args
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

var commands []command

func init() {
	commands = []command{
		{path: "orgs create", args: "NAME", group: groupAdmin, minArgs: 1, maxArgs: -1,
			summary: "create an org (words of NAME are joined with spaces)", define: defOrgsCreate},
		{path: "orgs list", group: groupAdmin, summary: "list every org with its wallet", define: defOrgsList},
		{path: "orgs get", args: "ORG", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "show an org and its wallet", define: defOrgsGet},
		{path: "orgs update", args: "ORG [--name N] [--pause-threshold-micros N]", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "rename an org or set its pause threshold", define: defOrgsUpdate,
			help: "Outbound traffic pauses while available funds are at or below the threshold (0..10^15 micros)."},
		{path: "keys create", args: "ORG [--role admin|charge|read]", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "create an API key (default role admin); the secret is shown once", define: defKeysCreate,
			help: "Roles: admin (everything in its org), charge (charges, reservations, delivery reports, balance,\n" +
				"status, rates), read (every GET route)."},
		{path: "keys list", args: "ORG", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "list an org's keys (never their secrets)", define: defKeysList},
		{path: "keys revoke", args: "ORG KEY", group: groupAdmin, minArgs: 2, maxArgs: 2,
			summary: "revoke a key; it fails with 401 from then on", define: defKeysRevoke},
		{path: "adjust", args: "ORG AMOUNT_MICROS --reason R [--reference REF]", group: groupAdmin, minArgs: 2, maxArgs: 2,
			summary: "credit (positive) or debit (negative) an org's wallet", define: defAdjust,
			help: "The reference makes the adjustment exactly-once: running the same command with the same\n" +
				"reference again replays it. Without --reference a random one is generated (and printed)."},
		{path: "grant", args: "ORG AMOUNT_MICROS --expires-at RFC3339 [--reason R] [--reference REF]", group: groupAdmin, minArgs: 2, maxArgs: 2,
			summary: "credit an org with money that expires (spent first; the rest leaves at expiry)", define: defGrant,
			help: "Spends and holds draw on the earliest-expiring credit first. At --expires-at the grant's unused\n" +
				"remainder leaves the wallet as an expiry entry. The reference makes the grant exactly-once, as for\n" +
				"adjust; without --reference a random one is generated (and printed)."},
		{path: "pause", args: "ORG [--reason R]", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "pause an org's outbound traffic (operator hold)", define: defPause},
		{path: "unpause", args: "ORG", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "lift an operator hold or a dispute pause", define: defUnpause},
		{path: "audit", group: groupAdmin,
			summary: "recompute every balance from the ledger; exit 1 on a mismatch", define: defAudit},
		{path: "cluster", group: groupAdmin, summary: "show Raft membership and state", define: defCluster},
		{path: "cluster join", args: "--node-id ID --raft-addr HOST:PORT --http-addr HOST:PORT", group: groupAdmin,
			summary: "add a node as a voter (or record its new address); joining again is a no-op", define: defClusterJoin,
			help: "orbitd --join does this itself when a new node starts; use this to re-register a node's\n" +
				"addresses. Any member accepts it (followers forward to the leader)."},
		{path: "cluster remove", args: "NODE_ID", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "take a node out of the cluster (not the leader itself)", define: defClusterRemove,
			help: "The leader cannot remove itself: stop it, and remove it from the new leader."},
		{path: "rates set", args: "FILE [--org ORG]", group: groupAdmin, minArgs: 1, maxArgs: 1,
			summary: "commit the default rate card, or ORG's override, from a JSON file (- reads stdin)", define: defRatesSet,
			help: "FILE holds {\"channels\": {...}} (prices in micros), for example:\n" +
				"  {\"channels\": {\"sms\": {\"per\": \"unit\", \"prices\": {\"1\": 4200, \"*\": 50000}},\n" +
				"                \"voice\": {\"per\": \"minute\", \"increment\": [60, 6], \"prices\": {\"1\": 9000, \"*\": 30000}},\n" +
				"                \"llm\": {\"per\": \"token\", \"models\": {\"gpt-4o-mini\": {\"input_per_million\": 150000, \"output_per_million\": 600000}}}}}\n" +
				"The output of 'orbitctl rates get' is accepted as is (its version is ignored: the server assigns\n" +
				"the next one). An override replaces the default card for the channels it names. The card prices\n" +
				"charges from the moment it is committed; holds keep the card they were created with."},
		{path: "fx get", group: groupAdmin, summary: "show the FX table (USD per unit of each currency)", define: defFxGet},
		{path: "fx set", args: "CUR=RATE... [--merge] | --clear", group: groupAdmin, maxArgs: -1,
			summary: "replace the FX table, e.g. fx set eur=1.0825 gbp=1.27 (--merge keeps the others)", define: defFxSet,
			help: "Rates are USD per unit of the currency: plain decimals above 0 and at most 10000 with at most\n" +
				"8 decimals, kept exactly. Without --merge the table is replaced: currencies not named are removed;\n" +
				"--clear removes every rate.\n" +
				"Top-ups in a currency of the table are credited at the rate in force when they are created."},
		{path: "balance", group: groupOrg, summary: "show the wallet of the key's org", define: defBalance},
		{path: "transactions", args: "[--limit N] [--type T] [--channel C] [--all]", group: groupOrg,
			summary: "list ledger entries, newest first", define: defTransactions},
		{path: "charge", args: "--reference R --channel C --amount-micros N", group: groupOrg,
			summary: "charge the wallet (the reference is the idempotency key)", define: defCharge},
		{path: "rates get", args: "[--org ORG]", group: groupOrg,
			summary: "print the key's org's effective rate card as JSON", define: defRatesGet,
			help: "The card in force for the API key's org: the default card with the org's override applied.\n" +
				"With --org, the key is checked to be one of ORG's (when an admin token is at hand too).\n" +
				"The operator API has no route that reads the default card alone; 'rates set' prints the card\n" +
				"it commits, and an org without an override shows the default card."},
		{path: "topup", args: "--amount CENTS [--currency usd] --success-url URL --cancel-url URL [--idempotency-key K]", group: groupOrg,
			summary: "start a top-up checkout and print its URL (the key needs the admin role)", define: defTopup,
			help: "The wallet is credited once the payment at the checkout URL completes. The Idempotency-Key\n" +
				"(generated unless given, and printed) makes the request exactly-once: running the command again\n" +
				"with the same key and flags prints the same top-up and checkout URL, in its current status."},
		{path: "reservations create", args: "--channel C (--amount-micros N | USAGE) [--reference R] [--ttl-seconds N]", group: groupOrg,
			summary: "hold funds for a call or a streamed response", define: defResCreate,
			help: "USAGE is an estimate rated with the card in force now: --destination D with --units N or\n" +
				"--seconds N, or --model M with --input-tokens N and --output-tokens N. The reference makes the\n" +
				"hold exactly-once (generated unless given). The hold expires after --ttl-seconds (default 300)."},
		{path: "reservations get", args: "ID", group: groupOrg, minArgs: 1, maxArgs: 1,
			summary: "show a hold", define: defResGet},
		{path: "reservations extend", args: "ID --amount-micros N [--ttl-seconds N] [--idempotency-key K]", group: groupOrg, minArgs: 1, maxArgs: 1,
			summary: "hold more on an open hold (the next slice of a call)", define: defResExtend,
			help: "The Idempotency-Key (generated unless given, and printed) makes the extension exactly-once:\n" +
				"repeating it with the same key never holds twice. --ttl-seconds moves the expiry to that many\n" +
				"seconds from now."},
		{path: "reservations commit", args: "ID (--amount-micros N | USAGE)", group: groupOrg, minArgs: 1, maxArgs: 1,
			summary: "charge the actual usage and free the rest of the hold", define: defResCommit,
			help: "USAGE is as for 'reservations create', rated with the card in force when the hold was created.\n" +
				"The same commit again is a replay; another one is refused (409 reservation_closed)."},
		{path: "reservations release", args: "ID", group: groupOrg, minArgs: 1, maxArgs: 1,
			summary: "free a hold (releasing a released or expired hold is a no-op)", define: defResRelease},
		{path: "demo", args: "[--name NAME]", group: groupOther,
			summary: `create an org "Demo" with an admin key and $150.00, and print curls to try`, define: defDemo},
	}
	commands = append(commands, command{path: "help", args: "[COMMAND]", group: groupOther, maxArgs: -1,
		summary: "list every command, or explain one"})
}

// ---- operator commands ----

func defOrgsCreate(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		o, err := c.CreateOrg(ctx, strings.Join(args, " "))
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Created org %s.\n", o.ID)
		a.printOrg(o)
		return nil
	}
}

func defOrgsList(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, _ []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		orgs, err := c.ListOrgs(ctx)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if len(orgs) == 0 {
			fmt.Fprintln(a.stdout, "No orgs yet: orbitctl orgs create NAME, or orbitctl demo.")
			return nil
		}
		tw := newTable(a.stdout)
		fmt.Fprintln(tw, "ID\tNAME\tBALANCE\tAVAILABLE\tOUTBOUND\tCREATED")
		for i := range orgs {
			o := &orgs[i]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Name, money(o.Wallet.BalanceMicros),
				money(o.Wallet.AvailableMicros), outbound(&o.Wallet), fmtTime(o.CreatedAt))
		}
		return tw.Flush()
	}
}

func defOrgsGet(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		o, err := c.GetOrg(ctx, args[0])
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		a.printOrg(o)
		return nil
	}
}

func defOrgsUpdate(fs *flag.FlagSet) runFunc {
	name := fs.String("name", "", "new name")
	threshold := fs.Int64("pause-threshold-micros", 0, "pause threshold in micros (0..10^15)")
	return func(a *app, ctx context.Context, args []string) error {
		var req client.UpdateOrgRequest
		if isSet(fs, "name") {
			req.Name = name
		}
		if isSet(fs, "pause-threshold-micros") {
			req.PauseThresholdMicros = threshold
		}
		if req.Name == nil && req.PauseThresholdMicros == nil {
			return usagef(cmdByPath("orgs update"), "orgs update: nothing to change: give --name or --pause-threshold-micros")
		}
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		o, err := c.UpdateOrg(ctx, args[0], req)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Updated org %s.\n", o.ID)
		a.printOrg(o)
		return nil
	}
}

func defKeysCreate(fs *flag.FlagSet) runFunc {
	role := fs.String("role", client.RoleAdmin, "key role: admin, charge or read")
	return func(a *app, ctx context.Context, args []string) error {
		switch *role {
		case client.RoleAdmin, client.RoleCharge, client.RoleRead:
		default:
			return usagef(cmdByPath("keys create"), "keys create: --role %q: want admin, charge or read", *role)
		}
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		k, err := c.CreateKey(ctx, args[0], *role)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		a.printKV(
			"Key ID", k.ID,
			"Org", k.OrgID,
			"Role", k.Role,
			"Prefix", k.Prefix,
			"Created", fmtTime(k.CreatedAt),
			"API key", k.Key,
		)
		fmt.Fprintln(a.stdout, "The API key is shown only this once: store it now.")
		return nil
	}
}

func defKeysList(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		keys, err := c.ListKeys(ctx, args[0])
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if len(keys) == 0 {
			fmt.Fprintf(a.stdout, "Org %s has no keys: orbitctl keys create %s\n", args[0], args[0])
			return nil
		}
		tw := newTable(a.stdout)
		fmt.Fprintln(tw, "ID\tROLE\tPREFIX\tCREATED\tREVOKED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Role, k.Prefix, fmtTime(k.CreatedAt), fmtTimePtr(k.RevokedAt))
		}
		return tw.Flush()
	}
}

func defKeysRevoke(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		k, err := c.RevokeKey(ctx, args[0], args[1])
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Revoked key %s (%s, role %s) of org %s at %s.\n", k.ID, k.Prefix, k.Role, k.OrgID, fmtTimePtr(k.RevokedAt))
		return nil
	}
}

func defAdjust(fs *flag.FlagSet) runFunc {
	reason := fs.String("reason", "", "why (required; kept in the ledger)")
	reference := fs.String("reference", "", "idempotency reference (default: generated)")
	return func(a *app, ctx context.Context, args []string) error {
		self := cmdByPath("adjust")
		amount, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || amount == 0 {
			return usagef(self, "adjust: AMOUNT_MICROS %q: want a nonzero integer of micros (1 USD = 1000000)", args[1])
		}
		if strings.TrimSpace(*reason) == "" {
			return usagef(self, "adjust: --reason is required")
		}
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		res, err := c.Adjust(ctx, args[0], client.AdjustmentRequest{AmountMicros: amount, Reason: *reason, Reference: *reference})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if res.Replayed {
			fmt.Fprintf(a.stdout, "Replayed: reference %s was already applied; nothing changed.\n", res.Reference)
		} else {
			verb := "Credited"
			if amount < 0 {
				verb = "Debited"
			}
			fmt.Fprintf(a.stdout, "%s %s to org %s.\n", verb, money(abs(amount)), args[0])
		}
		a.printKV(
			"Transaction", res.Transaction.ID,
			"Reference", res.Reference,
			"Amount", money(res.Transaction.AmountMicros),
			"Balance", money(res.Balance.BalanceMicros),
			"Available", money(res.Balance.AvailableMicros),
		)
		return nil
	}
}

func defPause(fs *flag.FlagSet) runFunc {
	reason := fs.String("reason", "", "text shown as outbound_block_details")
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		o, err := c.Pause(ctx, args[0], *reason)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Paused org %s: charges are refused with 403 outbound_paused until '%s unpause %s'.\n", o.ID, progName, o.ID)
		a.printOrg(o)
		return nil
	}
}

func defUnpause(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		o, err := c.Unpause(ctx, args[0])
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Unpaused org %s.\n", o.ID)
		a.printOrg(o)
		return nil
	}
}

func defAudit(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, _ []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		r, err := c.Audit(ctx)
		if err != nil {
			return err
		}
		if a.g.json {
			if err := a.printLastJSON(); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.stdout, "Orgs checked: %d\n", r.OrgsChecked)
			if len(r.Mismatches) == 0 {
				fmt.Fprintln(a.stdout, "Mismatches:   none (every balance equals the sum of its ledger)")
				return nil
			}
			fmt.Fprintf(a.stdout, "Mismatches:   %d\n", len(r.Mismatches))
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ORG\tPROBLEM\tENTRY\tBALANCE\tLEDGER SUM\tDIFFERENCE")
			for _, m := range r.Mismatches {
				entry := m.EntryID
				if entry == "" {
					entry = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.OrgID, m.Problem, entry,
					money(m.BalanceMicros), money(m.LedgerSumMicros), money(m.BalanceMicros-m.LedgerSumMicros))
			}
			tw.Flush()
		}
		if len(r.Mismatches) > 0 {
			return fmt.Errorf("audit found %d problem(s) in the ledger or the wallets", len(r.Mismatches))
		}
		return nil
	}
}

func defCluster(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, _ []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		ci, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		return a.printCluster(ci)
	}
}

func (a *app) printCluster(ci *client.ClusterInfo) error {
	leader := "none known"
	if ci.Leader != nil {
		leader = *ci.Leader
	}
	a.printKV(
		"Node", ci.NodeID,
		"Leader", leader,
		"Term", strconv.FormatUint(ci.Term, 10),
		"Commit index", strconv.FormatUint(ci.CommitIndex, 10),
		"Applied index", strconv.FormatUint(ci.AppliedIndex, 10),
		"Snapshot index", strconv.FormatUint(ci.SnapshotIndex, 10),
		"Digest", ci.Digest,
	)
	fmt.Fprintln(a.stdout)
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "ID\tRAFT ADDR\tHTTP ADDR\tSUFFRAGE\tSTATE")
	for _, n := range ci.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID, n.RaftAddr, strOr(n.HTTPAddr, "-"), n.Suffrage, n.State)
	}
	return tw.Flush()
}

// ---- org commands ----

func defBalance(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, _ []string) error {
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		b, err := c.Balance(ctx)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		a.printBalance(b)
		return nil
	}
}

func defTransactions(fs *flag.FlagSet) runFunc {
	limit := fs.Int("limit", 30, "entries per page, 1..100")
	typ := fs.String("type", "", "only this type: topup, spend, refund, topup_refund, grant, expiry, adjustment, dispute")
	channel := fs.String("channel", "", "only spends of this channel")
	all := fs.Bool("all", false, "page through every entry (--limit is the page size)")
	cursorTS := fs.String("cursor-ts", "", "continue after this next_cursor.cursor_ts (with --cursor-id)")
	cursorID := fs.String("cursor-id", "", "continue after this next_cursor.cursor_id (with --cursor-ts)")
	return func(a *app, ctx context.Context, _ []string) error {
		self := cmdByPath("transactions")
		if *limit < 1 || *limit > 100 {
			return usagef(self, "transactions: --limit %d: want 1..100", *limit)
		}
		if (*cursorTS == "") != (*cursorID == "") {
			return usagef(self, "transactions: give --cursor-ts and --cursor-id together")
		}
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		q := &client.TransactionsQuery{Limit: *limit, Type: *typ, Channel: *channel}
		if *cursorTS != "" {
			q.Cursor = &client.Cursor{TS: *cursorTS, ID: *cursorID}
		}
		var txs []client.Transaction
		var next *client.Cursor
		if *all {
			for tx, err := range c.AllTransactions(ctx, q) {
				if err != nil {
					return err
				}
				txs = append(txs, tx)
			}
		} else {
			page, err := c.Transactions(ctx, q)
			if err != nil {
				return err
			}
			txs, next = page.Transactions, page.NextCursor
		}
		if a.g.json {
			if *all {
				return a.printAllTransactionsJSON()
			}
			return a.printLastJSON()
		}
		if len(txs) == 0 {
			fmt.Fprintln(a.stdout, "No transactions.")
			return nil
		}
		tw := newTable(a.stdout)
		fmt.Fprintln(tw, "ID\tTYPE\tAMOUNT\tBALANCE AFTER\tCHANNEL\tREFERENCE\tCREATED")
		for i := range txs {
			t := &txs[i]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Type, money(t.AmountMicros), money(t.BalanceAfterMicros),
				orDash(t.Channel()), t.Reference, fmtTime(t.CreatedAt))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if next != nil {
			fmt.Fprintf(a.stdout, "More: orbitctl transactions --limit %d --cursor-ts %s --cursor-id %s (or --all)\n", *limit, next.TS, next.ID)
		}
		return nil
	}
}

func defCharge(fs *flag.FlagSet) runFunc {
	reference := fs.String("reference", "", "unique charge reference: the idempotency key (required)")
	channel := fs.String("channel", "", "channel, [a-z0-9_]{1,32}: sms, voice, llm, ... (required)")
	amount := fs.Int64("amount-micros", 0, "amount in micros, 1..10^15 (required)")
	return func(a *app, ctx context.Context, _ []string) error {
		self := cmdByPath("charge")
		switch {
		case *reference == "":
			return usagef(self, "charge: --reference is required")
		case *channel == "":
			return usagef(self, "charge: --channel is required")
		case *amount <= 0:
			return usagef(self, "charge: --amount-micros must be a positive integer of micros")
		}
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		res, err := c.Charge(ctx, client.ChargeRequest{Reference: *reference, Channel: *channel, AmountMicros: *amount})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if res.Replayed {
			fmt.Fprintf(a.stdout, "Replayed: reference %s was already charged; nothing was debited again.\n", *reference)
		} else {
			fmt.Fprintf(a.stdout, "Charged %s on %s.\n", money(-res.Transaction.AmountMicros), *channel)
		}
		a.printKV(
			"Transaction", res.Transaction.ID,
			"Reference", res.Transaction.Reference,
			"Balance", money(res.Balance.BalanceMicros),
			"Available", money(res.Balance.AvailableMicros),
		)
		return nil
	}
}

// ---- demo ----

// demoFundsMicros is what demo puts in the wallet: $150.00.
const demoFundsMicros = 150_000_000

func defDemo(fs *flag.FlagSet) runFunc {
	name := fs.String("name", "Demo", "the org's name")
	apiURL := fs.String("api-url", "", "the org API's address for the printed commands (default: --url, or this node's public address when --url is orbitd's --admin-addr)")
	return func(a *app, ctx context.Context, _ []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		o, err := c.CreateOrg(ctx, *name)
		if err != nil {
			return err
		}
		k, err := c.CreateKey(ctx, o.ID, client.RoleAdmin)
		if err != nil {
			return fmt.Errorf("org %s created, but creating its key failed: %w", o.ID, err)
		}
		adj, err := c.Adjust(ctx, o.ID, client.AdjustmentRequest{AmountMicros: demoFundsMicros, Reason: "demo funds", Reference: "demo-funds-" + o.ID})
		if err != nil {
			return fmt.Errorf("org %s and key %s created, but funding failed: %w", o.ID, k.Key, err)
		}
		api := a.demoAPIURL(ctx, c, k.Key, *apiURL)
		balanceCurl := fmt.Sprintf(`curl -X GET "%s/api/v1/billing/balance" -H "X-API-Key: %s"`, api, k.Key)
		chargeCurl := fmt.Sprintf(`curl -X POST "%s/api/v1/billing/charges" -H "X-API-Key: %s" -H "Content-Type: application/json" -d '{"reference":"demo_sms_0001","channel":"sms","amount_micros":4200}'`, api, k.Key)
		if a.g.json {
			out := map[string]any{
				"org_id":         o.ID,
				"org_name":       o.Name,
				"key_id":         k.ID,
				"key":            k.Key,
				"role":           k.Role,
				"balance_micros": adj.Balance.BalanceMicros,
				"curl_balance":   balanceCurl,
				"curl_charge":    chargeCurl,
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", b)
			return nil
		}
		fmt.Fprintf(a.stdout, "Demo org ready.\n\n")
		a.printKV(
			"Org", o.ID+" ("+o.Name+")",
			"API key", k.Key+"  (role admin, shown only this once)",
			"Funds", money(adj.Balance.BalanceMicros),
		)
		fmt.Fprintf(a.stdout, "\nCheck the balance:\n%s\n", balanceCurl)
		fmt.Fprintf(a.stdout, "\nCharge $0.0042 for one SMS (run it twice: the repeat is a replay, not a second charge):\n%s\n", chargeCurl)
		urlFlag := ""
		if api != defaultURL {
			urlFlag = " --url " + api
		}
		fmt.Fprintf(a.stdout, "\nOr with orbitctl: export ORBIT_API_KEY=%s; %s%s balance\n", k.Key, progName, urlFlag)
		return nil
	}
}

// demoAPIURL is where demo's printed commands reach the org API: --api-url
// when given; else --url, when it serves the org API; else (--url is
// orbitd's --admin-addr listener, which answers the org API 404) this
// node's public address from the cluster view, with --url's scheme.
func (a *app) demoAPIURL(ctx context.Context, admin *client.Client, key, flagURL string) string {
	if flagURL != "" {
		return strings.TrimRight(flagURL, "/")
	}
	probe := client.New(a.g.url, client.WithTimeout(callTimeout), client.WithAPIKey(key))
	if _, err := probe.Balance(ctx); client.StatusOf(err) != 404 {
		return a.g.url
	}
	info, err := admin.Cluster(ctx)
	if err != nil {
		return a.g.url
	}
	scheme, _, _ := strings.Cut(a.g.url, "://")
	for _, n := range info.Nodes {
		if n.ID == info.NodeID && n.HTTPAddr != nil && *n.HTTPAddr != "" {
			return scheme + "://" + *n.HTTPAddr
		}
	}
	return a.g.url
}

func cmdByPath(path string) *command {
	for i := range commands {
		if commands[i].path == path {
			return &commands[i]
		}
	}
	return nil
}
