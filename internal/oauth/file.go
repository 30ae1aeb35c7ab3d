package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/infobits/helpdesk"
)

// Consent is the content of the token file: the refresh token of a person's consent and
// what it was given for. The file is JSON, mode 0600, replaced whole (never edited in place).
type Consent struct {
	Provider string    `json:"provider"`
	ClientID string    `json:"client_id"`
	TokenURL string    `json:"token_url"`
	Scopes   []string  `json:"scopes"`
	SignedIn time.Time `json:"signed_in"`         // when Login wrote it
	Rotated  time.Time `json:"rotated,omitzero"`  // when the provider last gave a new refresh token
	Account  string    `json:"account,omitempty"` // who signed in, when the provider said

	RefreshToken string `json:"refresh_token"`

	Mode fs.FileMode `json:"-"` // the file's permissions, as read
}

// ReadConsent reads the token file. A missing file is an error wrapping fs.ErrNotExist.
func ReadConsent(path string) (*Consent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var c Consent
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return nil, fmt.Errorf("%s is not a token file written by `%s`: %w", path, LoginCommand, err)
	}
	c.Mode = fi.Mode().Perm()
	return &c, nil
}

// WriteConsent replaces the token file with c: a temporary file of mode 0600 in the same
// folder, synced and renamed over it, the folder synced. A crash leaves the old file or the
// new one, never half of either.
func WriteConsent(path string, c *Consent) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("write the token file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the token file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// lockFile takes the exclusive lock beside the token file that every refresh and Login
// hold: a refresh token spent by one process is never presented again by another. It waits
// for ctx; the returned func releases the lock.
func lockFile(ctx context.Context, tokenFile string) (func(), error) {
	path := tokenFile + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock for the token file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !helpdesk.Sleep(ctx, 50*time.Millisecond) {
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w", path, context.Cause(ctx))
		}
	}
}

// refresh trades the file's refresh token for an access token, under the file's lock, and
// saves the new refresh token when the provider rotated it. Called with s.mu held.
func (s *Source) refresh(ctx context.Context) (*oauth2.Token, error) {
	path := s.cfg.TokenFile
	unlock, err := lockFile(ctx, path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := ReadConsent(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, consentErr("no OAuth sign-in yet (%s does not exist): run `%s`", path, LoginCommand)
	}
	if err != nil {
		return nil, consentErr("read the OAuth token file: %w; run `%s` to write it anew", err, LoginCommand)
	}
	conf := s.cfg.oauth2()
	if c.ClientID != conf.ClientID || c.TokenURL != conf.Endpoint.TokenURL {
		return nil, consentErr("the refresh token in %s was given to client %s at %s, but the configuration names client %s at %s: run `%s` again",
			path, c.ClientID, c.TokenURL, conf.ClientID, conf.Endpoint.TokenURL, LoginCommand)
	}
	if c.RefreshToken == "" {
		return nil, consentErr("%s holds no refresh token: run `%s`", path, LoginCommand)
	}
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: c.RefreshToken}).Token()
	if err != nil {
		return nil, s.explain(err, "refresh token")
	}
	if tok.RefreshToken != "" && tok.RefreshToken != c.RefreshToken {
		c.RefreshToken, c.Rotated = tok.RefreshToken, s.cfg.Now().UTC()
		if err := WriteConsent(path, c); err != nil {
			// The old refresh token may be spent already: say so now rather than fail in an hour.
			return nil, fmt.Errorf("the provider gave a new refresh token, which cannot be saved: %w; make the folder writable for the gateway's user, then run `%s`",
				err, LoginCommand)
		}
	}
	return tok, nil
}
