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

// A voice call billed slice by slice: hold the first minute, hold the next
// one while the call goes on, and commit the seconds actually used when it
// ends (rated with the card in force when the call began). Every step is
// retried safely: the hold by its reference, each extension by the
// Idempotency-Key the client generates and reuses, the commit because the
// same commit replays.
func ExampleClient_CreateReservation() {
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("ORBIT_API_KEY")))
	ctx := context.Background()

	hold, err := c.CreateReservation(ctx, client.ReservationRequest{
		Reference:  "call_01J9KP3R5W8YEQ4DXG6N7H2VKZ",
		Channel:    "voice",
		Usage:      &client.Usage{Destination: "14155550100", Seconds: client.Int64(60)},
		TTLSeconds: 120,
	})
	if client.IsCode(err, client.CodeInsufficientFunds) {
		fmt.Println("not enough funds: reject the call")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	id := hold.Reservation.ID

	// One minute later, the call goes on: hold the next minute.
	if _, err := c.ExtendReservation(ctx, id, client.ExtendRequest{AmountMicros: hold.Reservation.AmountMicros, TTLSeconds: 120}); err != nil {
		if client.IsCode(err, client.CodeInsufficientFunds) {
			fmt.Println("funds ran out: end the call now")
		} else {
			log.Fatal(err)
		}
	}

	// The call ended after 95 seconds.
	res, err := c.CommitReservation(ctx, id, client.CommitRequest{
		Usage: &client.Usage{Destination: "14155550100", Seconds: client.Int64(95)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("charged %d micros (capped: %v); available now %d micros\n",
		-res.Transaction.AmountMicros, res.Capped, res.Balance.AvailableMicros)
}

// Top up the wallet: send the payer to CheckoutURL; the wallet is credited
// once the payment completes.
func ExampleClient_TopUp() {
	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("ORBIT_API_KEY")))
	res, err := c.TopUp(context.Background(), client.TopUpRequest{
		Amount:     10000, // $100.00
		SuccessURL: "https://example.com/billing?topup=ok",
		CancelURL:  "https://example.com/billing?topup=cancelled",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pay at", res.CheckoutURL, "- repeat with Idempotency-Key", res.IdempotencyKey, "to get it back")
}
