// Package search is the full-text index of the tickets: their subjects, thread texts (the
// customer's emails, staff answers and notes) and attachment names, Dutch and English word
// forms alike ("kassa" finds "kassa's", "printer" finds "printers"), ranked, with filters on
// status, customer, arrival and deadline. It uses bleve (scorch) with the Dutch and English
// stemming analyzers.
//
// The index is derived data, in a folder beside the database (DB + ".search"): the store marks
// every ticket it changes (store's search_pending bucket, in the same transaction), and the
// index takes the marked tickets in after the commit and then clears their marks. A gateway
// that stopped between the two finishes at its next start; an index that is lost or broken is
// rebuilt from the store (Rebuild, `helpdesk search reindex`). Its loss never loses a ticket:
// nothing is kept only here. The index stores no text, only the terms: the matching line of a
// hit is read from the store.
package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/lang/nl"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/infobits/helpdesk"
	"github.com/infobits/helpdesk/rules/escalation"
	"github.com/infobits/helpdesk/store"
)

// Path is the index folder of the database at dbPath.
func Path(dbPath string) string { return dbPath + ".search" }

// analyzerNL is Dutch with the apostrophe plural and possessive taken off ("kassa's" is
// "kassa"), which bleve's Dutch analyzer leaves on.
const analyzerNL = "helpdesk_nl"

// The fields of a ticket's document.
const (
	fSubject   = "subject"    // Dutch
	fSubjectEN = "subject_en" // English
	fBody      = "body"       // the thread's texts, Dutch
	fBodyEN    = "body_en"
	fFiles     = "files" // attachment names
	fStatus    = "status"
	fCustomer  = "customer"
	fCreated   = "created"
	fDue       = "due" // only while the ticket awaits its first response
)

func indexMapping() (mapping.IndexMapping, error) {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer(analyzerNL, map[string]any{
		"type": custom.Name, "tokenizer": unicode.Name,
		"token_filters": []string{en.PossessiveName, lowercase.Name, nl.StopName, nl.SnowballStemmerName},
	}); err != nil {
		return nil, fmt.Errorf("search analyzer: %w", err)
	}
	text := func(analyzer string) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer, f.Store, f.IncludeTermVectors, f.IncludeInAll, f.DocValues = analyzer, false, false, false, false
		return f
	}
	kw := func() *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer, f.Store, f.IncludeInAll, f.DocValues = keyword.Name, false, false, false
		return f
	}
	date := func() *mapping.FieldMapping {
		f := bleve.NewDateTimeFieldMapping()
		f.Store, f.IncludeInAll, f.DocValues = false, false, false
		return f
	}
	dm := bleve.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt(fSubject, text(analyzerNL))
	dm.AddFieldMappingsAt(fSubjectEN, text(en.AnalyzerName))
	dm.AddFieldMappingsAt(fBody, text(analyzerNL))
	dm.AddFieldMappingsAt(fBodyEN, text(en.AnalyzerName))
	dm.AddFieldMappingsAt(fFiles, text(analyzerNL))
	dm.AddFieldMappingsAt(fStatus, kw())
	dm.AddFieldMappingsAt(fCustomer, kw())
	dm.AddFieldMappingsAt(fCreated, date())
	dm.AddFieldMappingsAt(fDue, date())
	im.DefaultMapping = dm
	im.StoreDynamic, im.IndexDynamic, im.DocValuesDynamic = false, false, false
	return im, nil
}

// Index is the open search index. It is safe for concurrent use.
type Index struct {
	path string
	db   *store.DB
	log  *slog.Logger

	mu  sync.RWMutex // guards idx (Rebuild swaps it)
	idx bleve.Index
	// catchUp serialises the taking in of marked tickets: a token, held while one runs (a
	// channel, so that a search can wait for it a bounded time).
	catchUp chan struct{}
	// filling is the rebuild of an index Open made anew, until the catch-ups have taken in
	// every ticket (then it is logged as done); nil when none is under way. Guarded by
	// catchUp.
	filling *filling
}

// filling is a rebuild under way: when it started, and how many tickets are in so far.
type filling struct {
	start time.Time
	done  int
}

func (x *Index) lock()   { x.catchUp <- struct{}{} }
func (x *Index) unlock() { <-x.catchUp }

// Open opens the index at path for the tickets of db, creating it when there is none (and
// marking every ticket, so the next CatchUp fills it). An index that cannot be opened is
// derived data: it is moved aside and made anew, with a warning. It blocks at most a few
// seconds for the index's lock.
func Open(path string, db *store.DB, log *slog.Logger) (*Index, error) {
	x := &Index{path: path, db: db, log: log, catchUp: make(chan struct{}, 1)}
	idx, err := bleve.OpenUsing(path, map[string]any{"bolt_timeout": "3s"})
	why := "search index missing: rebuilding it from the database"
	switch {
	case err == nil:
		x.idx = idx
		return x, nil
	case errors.Is(err, bleve.ErrorIndexPathDoesNotExist):
	default:
		aside := fmt.Sprintf("%s.broken-%d", path, time.Now().Unix())
		log.Warn("the search index cannot be opened; it is rebuilt from the database", "path", path, "moved_to", aside, "err", err)
		why = "search index made anew: rebuilding it from the database"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("search index %s cannot be opened (%v) nor moved aside: %w", path, err, rerr)
		}
	}
	n, err := x.create()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		// After a restore, or the folder was removed: the catch-ups fill it (the first one
		// at once), which at 100,000 tickets takes minutes; searches wait for it.
		log.Info(why, "path", path, "tickets", n)
		x.filling = &filling{start: time.Now()}
	}
	return x, nil
}

// create makes an empty index at x.path and marks every ticket for it; it returns how many.
func (x *Index) create() (int, error) {
	m, err := indexMapping()
	if err != nil {
		return 0, err
	}
	idx, err := bleve.NewUsing(x.path, m, scorch.Name, scorch.Name, map[string]any{"bolt_timeout": "3s"})
	if err != nil {
		return 0, fmt.Errorf("create search index %s: %w", x.path, err)
	}
	var n int
	if err := x.db.Update(context.Background(), func(tx *store.Tx) (err error) {
		n, err = tx.MarkAllSearch()
		return err
	}); err != nil {
		idx.Close()
		return 0, fmt.Errorf("mark the tickets for the new search index: %w", err)
	}
	x.mu.Lock()
	x.idx = idx
	x.mu.Unlock()
	return n, nil
}

// Close closes the index.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.idx.Close()
}

// batchSize is how many tickets one batch of CatchUp takes in.
const batchSize = 500

// CatchUp takes in every ticket marked since the last time, in batches, and returns how many.
// Marks are cleared only once their batch is on disk, and only when the ticket was not
// changed again meanwhile.
func (x *Index) CatchUp(ctx context.Context) (int, error) {
	x.lock()
	defer x.unlock()
	return x.catchUpLocked(ctx)
}

// catchUpLocked is CatchUp with x.catchUp held.
func (x *Index) catchUpLocked(ctx context.Context) (int, error) {
	total := 0
	for {
		var marks []store.SearchMark
		var docs map[string]map[string]any
		var gone []string
		if err := x.db.View(ctx, func(tx *store.Tx) error {
			marks = tx.SearchPending(batchSize)
			docs = make(map[string]map[string]any, len(marks))
			for _, m := range marks {
				t, err := tx.Ticket(m.TicketID)
				if errors.Is(err, helpdesk.ErrNotFound) {
					gone = append(gone, docID(m.TicketID))
					continue
				}
				if err != nil {
					return err
				}
				msgs, err := tx.Messages(t.ID)
				if err != nil {
					return err
				}
				docs[docID(t.ID)] = docOf(t, msgs)
			}
			return nil
		}); err != nil {
			return total, fmt.Errorf("read tickets to index: %w", err)
		}
		if len(marks) == 0 {
			if f := x.filling; f != nil {
				x.filling = nil
				x.log.Info("search index rebuilt", "tickets", f.done, "duration", time.Since(f.start).Round(time.Millisecond))
			}
			return total, nil
		}
		if err := x.write(docs, gone); err != nil {
			return total, err
		}
		if err := x.db.Update(ctx, func(tx *store.Tx) error { return tx.ClearSearch(marks) }); err != nil {
			return total, fmt.Errorf("clear search marks: %w", err)
		}
		total += len(marks)
		if x.filling != nil {
			x.filling.done += len(marks)
		}
	}
}

// write puts one batch of documents into the index and deletes the gone ones.
func (x *Index) write(docs map[string]map[string]any, gone []string) error {
	x.mu.RLock()
	defer x.mu.RUnlock() // also when bleve panics: Rebuild and Close must not wait for ever
	b := x.idx.NewBatch()
	for id, d := range docs {
		if err := b.Index(id, d); err != nil {
			return fmt.Errorf("index ticket %s: %w", id, err)
		}
	}
	for _, id := range gone {
		b.Delete(id)
	}
	if err := x.idx.Batch(b); err != nil {
		return fmt.Errorf("write the search index: %w", err)
	}
	return nil
}

// Run keeps the index up to date while ctx lasts: after every commit that changed a ticket.
// A failure is logged and tried again at the next change or after a minute; so is a panic (a
// bug, in bleve or here): the gateway goes on, the marks stay and the tickets are taken in
// at the next try.
func (x *Index) Run(ctx context.Context) {
	wake := x.db.SearchWake()
	retry := time.NewTicker(time.Minute)
	defer retry.Stop()
	for {
		var n int
		var err error
		if p := helpdesk.Survive(func() { n, err = x.CatchUp(ctx) }); p != nil {
			x.log.Error("updating the search index failed with a panic (a bug); will try again (the tickets are safe in the database)", "panic", p)
		} else if err != nil && ctx.Err() == nil {
			x.log.Error("the search index could not be updated; will try again (the tickets are safe in the database)", "err", err)
		} else if n > 0 {
			x.log.Debug("search index updated", "tickets", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-retry.C:
		}
	}
}

// Rebuild makes the index anew from the store: every ticket is taken in again. It returns the
// number of tickets indexed. Searches during a rebuild see the old index until the new one is
// complete.
func (x *Index) Rebuild(ctx context.Context) (int, error) {
	x.lock()
	defer x.unlock() // also when it panics: the gateway's updates must not wait for ever
	tmp := x.path + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("remove %s: %w", tmp, err)
	}
	fresh := &Index{path: tmp, db: x.db, log: x.log, catchUp: make(chan struct{}, 1)}
	if _, err := fresh.create(); err != nil {
		return 0, err
	}
	n, err := fresh.CatchUp(ctx)
	if err != nil {
		fresh.Close()
		return n, err
	}
	if err := fresh.Close(); err != nil {
		return n, err
	}
	old := x.path + ".old"
	if err := x.swap(tmp, old); err != nil {
		return n, fmt.Errorf("replace the search index: %w", err)
	}
	_ = os.RemoveAll(old)
	return n, nil
}

// swap puts the index built at tmp in the place of the open one, which moves to old, and
// opens it.
func (x *Index) swap(tmp, old string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.idx.Close()
	_ = os.RemoveAll(old)
	err := os.Rename(x.path, old)
	if err == nil {
		err = os.Rename(tmp, x.path)
	}
	idx, oerr := bleve.OpenUsing(x.path, map[string]any{"bolt_timeout": "3s"})
	if oerr == nil {
		x.idx = idx
	}
	return errors.Join(err, oerr)
}

func docID(id uint64) string { return strconv.FormatUint(id, 10) }

// docOf is a ticket's document: subject, every text of the thread (delivery reports left
// out), attachment names, and the filter fields.
func docOf(t *helpdesk.Ticket, msgs []*helpdesk.Message) map[string]any {
	var body, files strings.Builder
	for _, m := range msgs {
		if m.Direction == helpdesk.DirectionReport {
			continue
		}
		body.WriteString(m.Text)
		body.WriteString("\n")
		for _, a := range m.Attachment {
			files.WriteString(a.Filename)
			files.WriteString("\n")
		}
	}
	d := map[string]any{fSubject: t.Subject, fSubjectEN: t.Subject, fBody: body.String(), fBodyEN: body.String(),
		fFiles: files.String(), fStatus: t.Status, fCustomer: docID(t.CustomerID), fCreated: t.Created}
	if escalation.Awaiting(t) {
		d[fDue] = t.Due
	}
	return d
}

// Query is a search: words (any may be empty for a filter-only list) and filters.
type Query struct {
	Text       string
	Status     string    // open, answered or closed; "" any
	CustomerID uint64    // 0: any
	Since      time.Time // arrived at or after; zero: any
	DueBefore  time.Time // awaiting a first response, due before; zero: any
	Limit      int       // 0: 50
}

// Hit is one ticket found, best first.
type Hit struct {
	TicketID uint64
	Score    float64
}

// Search returns the tickets matching q, best first. Every word of q.Text must match, in
// the subject, the thread or an attachment name, in any of its Dutch or English forms; a
// match in the subject weighs twice.
func (x *Index) Search(ctx context.Context, q Query) ([]Hit, int, error) {
	var must []query.Query
	for _, w := range strings.Fields(q.Text) {
		var any []query.Query
		for _, f := range []string{fSubject, fSubjectEN, fBody, fBodyEN, fFiles} {
			mq := bleve.NewMatchQuery(w)
			mq.SetField(f)
			if f == fSubject || f == fSubjectEN {
				mq.SetBoost(2)
			}
			any = append(any, mq)
		}
		must = append(must, bleve.NewDisjunctionQuery(any...))
	}
	if q.Status != "" {
		tq := bleve.NewTermQuery(q.Status)
		tq.SetField(fStatus)
		must = append(must, tq)
	}
	if q.CustomerID != 0 {
		tq := bleve.NewTermQuery(docID(q.CustomerID))
		tq.SetField(fCustomer)
		must = append(must, tq)
	}
	if !q.Since.IsZero() {
		rq := bleve.NewDateRangeQuery(q.Since, time.Time{})
		rq.SetField(fCreated)
		must = append(must, rq)
	}
	if !q.DueBefore.IsZero() {
		rq := bleve.NewDateRangeQuery(time.Time{}, q.DueBefore)
		rq.SetField(fDue)
		must = append(must, rq)
	}
	var qq query.Query = bleve.NewMatchAllQuery()
	if len(must) > 0 {
		qq = bleve.NewConjunctionQuery(must...)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	req := bleve.NewSearchRequestOptions(qq, limit, 0, false)
	if q.Text == "" {
		req.SortBy([]string{"_id"})
	}
	x.mu.RLock()
	res, err := x.idx.SearchInContext(ctx, req)
	x.mu.RUnlock()
	if err != nil {
		return nil, 0, fmt.Errorf("search: %w", err)
	}
	out := make([]Hit, 0, len(res.Hits))
	for _, h := range res.Hits {
		id, err := strconv.ParseUint(h.ID, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, Hit{TicketID: id, Score: h.Score})
	}
	return out, int(res.Total), nil
}

// Size is the bytes the index takes on disk.
func (x *Index) Size() (int64, error) {
	var n int64
	err := walkSize(x.path, &n)
	return n, err
}

func walkSize(dir string, n *int64) error {
	es, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.IsDir() {
			if err := walkSize(dir+"/"+e.Name(), n); err != nil {
				return err
			}
			continue
		}
		if fi, err := e.Info(); err == nil {
			*n += fi.Size()
		}
	}
	return nil
}

// MatchingLine returns the line of the ticket — its subject, a line of its thread, an
// attachment name — with the most of the words of text in any of their Dutch or English forms
// (the first of those: a word alone gives its first line), cut to about 160 characters around
// the first word found; "" when none has (a filter-only search).
func (x *Index) MatchingLine(text string, t *helpdesk.Ticket, msgs []*helpdesk.Message) string {
	x.mu.RLock()
	m := x.idx.Mapping()
	x.mu.RUnlock()
	var analyzers []analysis.Analyzer
	for _, name := range []string{analyzerNL, en.AnalyzerName} {
		if a := m.AnalyzerNamed(name); a != nil {
			analyzers = append(analyzers, a)
		}
	}
	// want maps each term to the words of text it stands for.
	want := map[string][]int{}
	words := 0
	for _, w := range strings.Fields(text) {
		found := false
		for _, a := range analyzers {
			for _, tok := range a.Analyze([]byte(w)) {
				want[string(tok.Term)] = append(want[string(tok.Term)], words)
				found = true
			}
		}
		if found {
			words++
		}
	}
	if words == 0 {
		return ""
	}
	// match returns how many of the words the line has, and where the first one starts.
	match := func(line string) (int, int) {
		has := map[int]bool{}
		at := -1
		for _, a := range analyzers {
			for _, tok := range a.Analyze([]byte(line)) {
				for _, w := range want[string(tok.Term)] {
					has[w] = true
					if at < 0 || tok.Start < at {
						at = tok.Start
					}
				}
			}
		}
		return len(has), at
	}
	lines := []string{t.Subject}
	for _, msg := range msgs {
		if msg.Direction == helpdesk.DirectionReport {
			continue
		}
		lines = append(lines, strings.Split(msg.Text, "\n")...)
	}
	for _, msg := range msgs {
		for _, a := range msg.Attachment {
			lines = append(lines, a.Filename)
		}
	}
	best, bestN, bestAt := "", 0, 0
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if n, at := match(l); n > bestN {
			best, bestN, bestAt = l, n, at
			if n == words {
				break
			}
		}
	}
	if bestN == 0 {
		return ""
	}
	return excerpt(best, bestAt, 160)
}

// excerpt cuts line to about n bytes around byte offset at, on rune boundaries, marking cuts
// with "…".
func excerpt(line string, at, n int) string {
	if len(line) <= n {
		return line
	}
	start := max(0, at-n/3)
	for start > 0 && !utf8.RuneStart(line[start]) {
		start--
	}
	end := min(len(line), start+n)
	for end < len(line) && !utf8.RuneStart(line[end]) {
		end++
	}
	out := line[start:end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(line) {
		out += "…"
	}
	return out
}

// Statuses are the ticket statuses a filter may name.
func Statuses() []string {
	return []string{helpdesk.StatusOpen, helpdesk.StatusAnswered, helpdesk.StatusClosed}
}

// ValidStatus reports whether s is a ticket status.
func ValidStatus(s string) bool { return slices.Contains(Statuses(), s) }
