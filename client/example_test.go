package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/orbit/orbit/client"
)

// A gateway charges one SMS. The reference is the message id: if the call
// is retried (by the client after a 503, or by the gateway after a crash),
// the wallet is debited once and the repeat reports Replayed.
func ExampleClient_Charge() {
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("ORBIT_API_KEY")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	res, err := c.Charge(ctx, client.ChargeRequest{
		Reference:    "sms_msg_01J9KP3R5W8YEQ4DXG6N7H2VKZ",
		Channel:      "sms",
		AmountMicros: 4200, // $0.0042
		Metadata:     map[string]any{"campaign": "spring"},
	})
	switch {
	case client.IsCode(err, client.CodeInsufficientFunds):
		fmt.Println("wallet empty: hold the message")
		return
	case client.IsCode(err, client.CodeOutboundPaused):
		fmt.Println("org paused by the operator")
		return
	case err != nil:
		log.Fatal(err)
	}
	fmt.Printf("charged %d micros as %s (replayed: %v); available now %d micros\n",
		-res.Transaction.AmountMicros, res.Transaction.ID, res.Replayed, res.Balance.AvailableMicros)
}

// Refund part of a spend. Without an IdempotencyKey the client makes one
// and sends the same key on every retry, so the refund happens once; keep
// res.IdempotencyKey to repeat the request later.
func ExampleClient_Refund() {
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("ORBIT_API_KEY")))
	ctx := context.Background() // the client applies its default deadline

	res, err := c.Refund(ctx, client.RefundRequest{
		TransactionID: "ct_0000000000000000",
		AmountMicros:  2100,
		Reason:        "message not delivered",
	})
	if client.IsCode(err, client.CodeNotFound) {
		fmt.Println("no such spend in this org")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("refunded %d micros (entry %s, key %s); balance %s USD\n",
		res.Transaction.AmountMicros, res.Transaction.ID, res.IdempotencyKey, res.Balance.BalanceUSD)
}
