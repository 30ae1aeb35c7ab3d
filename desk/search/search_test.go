package search

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/store"
	"github.com/infobits/helpdesk/store/storetest"
)

var ctx = context.Background()

func addTicket(t *testing.T, db *store.DB, customer uint64, subject string, texts ...string) uint64 {
	t.Helper()
	var id uint64
	if err := db.Update(ctx, func(tx *store.Tx) error {
		tk := &helpdesk.Ticket{CustomerID: customer, Subject: subject, Status: helpdesk.StatusOpen, Created: time.Now()}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		id = tk.ID
		for _, s := range texts {
			if err := tx.AddMessage(tk, &helpdesk.Message{Direction: helpdesk.DirectionIn, Text: s}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func ids(hs []Hit) []uint64 {
	var out []uint64
	for _, h := range hs {
		out = append(out, h.TicketID)
	}
	slices.Sort(out)
	return out
}

// TestWordForms: Dutch and English word forms find each other, the index is derived (a
// ticket changed after the index was opened is found after CatchUp; a lost index is rebuilt
// from the store).
func TestWordForms(t *testing.T) {
	db := storetest.New(t)
	kassa := addTicket(t, db, 1, "Kassa's starten niet", "Geen van de kassa's start op.")
	printer := addTicket(t, db, 2, "Bonprinter", "De printers geven geen bonnen.")
	other := addTicket(t, db, 1, "Vraag over de factuur", "Graag een kopie.")
	path := Path(db.Path())
	x, err := Open(path, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { x.Close() }()
	if n, err := x.CatchUp(ctx); err != nil || n != 3 {
		t.Fatalf("CatchUp = %d, %v", n, err)
	}
	for q, want := range map[string][]uint64{
		"kassa": {kassa}, "kassa's": {kassa}, "KASSA": {kassa}, "printer": {printer}, "printers": {printer},
		"factuur": {other}, "facturen": {other}, "printer bonnen": {printer}, "printer factuur": nil,
	} {
		hs, _, err := x.Search(ctx, Query{Text: q})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(hs); !slices.Equal(got, want) {
			t.Errorf("Search(%q) = %v, want %v", q, got, want)
		}
	}
	if hs, _, _ := x.Search(ctx, Query{Text: "kassa", CustomerID: 2}); len(hs) != 0 {
		t.Errorf("customer filter: %v", hs)
	}
	if hs, _, _ := x.Search(ctx, Query{CustomerID: 1}); !slices.Equal(ids(hs), []uint64{kassa, other}) {
		t.Errorf("a filter alone = %v", ids(hs))
	}
	// A ticket added after the index was filled: marked in its transaction, found after CatchUp.
	late := addTicket(t, db, 3, "Pinautomaat", "De pinautomaat weigert kaarten.")
	if n, err := x.CatchUp(ctx); err != nil || n != 1 {
		t.Fatalf("CatchUp after one ticket = %d, %v", n, err)
	}
	if hs, _, _ := x.Search(ctx, Query{Text: "pinautomaten"}); !slices.Equal(ids(hs), []uint64{late}) {
		t.Errorf("the late ticket: %v", ids(hs))
	}
	// The index is lost: opened again it is made anew and filled from the store.
	x.Close()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	x, err = Open(path, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := x.CatchUp(ctx); err != nil || n != 4 {
		t.Fatalf("CatchUp of a new index = %d, %v", n, err)
	}
	if hs, _, _ := x.Search(ctx, Query{Text: "kassa's"}); !slices.Equal(ids(hs), []uint64{kassa}) {
		t.Errorf("after the index was lost: %v", ids(hs))
	}
	if n, err := x.Rebuild(ctx); err != nil || n != 4 {
		t.Fatalf("Rebuild = %d, %v", n, err)
	}
	if hs, _, _ := x.Search(ctx, Query{Text: "printers"}); !slices.Equal(ids(hs), []uint64{printer}) {
		t.Errorf("after Rebuild: %v", ids(hs))
	}
}

// bleveIndex names bleve.Index for embedding (its method Index would clash with the field).
type bleveIndex = bleve.Index

// panicky is an index whose writes panic while armed: a bug in bleve or in the documents.
type panicky struct {
	bleveIndex
	armed *atomic.Bool
}

func (p panicky) Batch(b *bleve.Batch) error {
	if p.armed.Load() {
		panic("a bug while writing the index")
	}
	return p.bleveIndex.Batch(b)
}

// TestIndexSurvivesPanic: a panic while the index is written is reported by Run, which goes
// on: the tickets stay marked and are found after the next commit. A search that panics (the
// API and the control socket survive it per request) leaves the index usable: the next
// search, a rebuild and Close do not wait for ever.
func TestIndexSurvivesPanic(t *testing.T) {
	db := storetest.New(t)
	kassa := addTicket(t, db, 1, "Kassa's starten niet", "Geen van de kassa's start op.")
	var logs safeBuffer
	x, err := Open(Path(db.Path()), db, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { x.Close() }()
	armed := &atomic.Bool{}
	armed.Store(true)
	x.idx = panicky{bleveIndex: x.idx, armed: armed}

	// A search while the write panics: the panic reaches the caller, the index stays usable.
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("Find did not panic with the armed index")
			}
		}()
		x.Find(ctx, Query{Text: "kassa"})
	}()

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.Run(runCtx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"updating the search index failed with a panic (a bug); will try again (the tickets are safe in the database)","panic":{"value":"a bug while writing the index"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no panic reported:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	armed.Store(false)
	printer := addTicket(t, db, 2, "Bonprinter", "De printers geven geen bonnen.") // a commit wakes Run
	for _, c := range []struct {
		q    string
		want uint64
	}{{"kassa", kassa}, {"printers", printer}} {
		for {
			hs, _, err := x.Search(ctx, Query{Text: c.q})
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(ids(hs), []uint64{c.want}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Search(%q) = %v after the panic, want ticket %d", c.q, ids(hs), c.want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if found, _, err := x.Find(ctx, Query{Text: "kassa's"}); err != nil || len(found) != 1 {
		t.Errorf("Find after the panics = %v, %v", found, err)
	}
	if n, err := x.Rebuild(ctx); err != nil || n != 2 {
		t.Errorf("Rebuild after the panics = %d, %v", n, err)
	}
}

// safeBuffer is a log destination for a goroutine and the test.
type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
