package failure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErr(t *testing.T) {
	const key = "AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000"
	u := "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?key=" + key
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: u, Err: err} }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name   string
		err    error
		class  Class
		reason string
	}{
		{"nil", nil, Success, ""},
		{"canceled", context.Canceled, Canceled, "canceled: the caller's context was canceled"},
		{"canceled in a url.Error", wrap(context.Canceled), Canceled, "canceled: the caller's context was canceled"},
		{"canceled wrapped", fmt.Errorf("read body: %w", context.Canceled), Canceled, "canceled: the caller's context was canceled"},
		{"deadline exceeded", context.DeadlineExceeded, Upstream, "timeout: context deadline exceeded"},
		{"deadline in a url.Error", wrap(context.DeadlineExceeded), Upstream, "timeout: context deadline exceeded"},
		{"net.Error timeout", wrap(timeoutErr{}), Upstream, "timeout: i/o timeout"},
		{"connection refused", wrap(refused), Upstream, "connection refused: dial tcp: connect: connection refused"},
		{"connection reset", wrap(errors.New("read tcp 10.0.0.1:5->10.0.0.2:443: read: connection reset by peer")), Upstream,
			"connection reset: read tcp 10.0.0.1:5->10.0.0.2:443: read: connection reset by peer"},
		{"dns", wrap(&net.DNSError{Err: "no such host", Name: "api.example.invalid", IsNotFound: true}), Upstream,
			"dns: lookup api.example.invalid: no such host"},
		{"EOF", wrap(io.EOF), Upstream, "connection closed early: EOF"},
		{"unexpected EOF reading the body", io.ErrUnexpectedEOF, Upstream, "connection closed early: unexpected EOF"},
		{"tls", wrap(errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority")), Upstream,
			"tls: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"other", errors.New("http2: server sent GOAWAY"), Upstream, "transport: http2: server sent GOAWAY"},
		{"key in a non-url error is masked", fmt.Errorf("Post %q: boom", u), Upstream,
			`transport: Post "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?key=AIza…": boom`},
	}
	c := testClassifier()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Err(tt.err)
			if got.Class != tt.class || got.Reason != tt.reason || !got.Until.IsZero() {
				t.Errorf("Err(%v) = %v %q %v; want %v %q", tt.err, got.Class, got.Reason, got.Until, tt.class, tt.reason)
			}
			if strings.Contains(got.Reason, key) {
				t.Errorf("Reason %q holds the key", got.Reason)
			}
		})
	}
}

// TestErrRealTransport classifies errors returned by a real http.Client.
func TestErrRealTransport(t *testing.T) {
	const key = "AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000"
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	// A free port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	c := testClassifier()
	do := func(t *testing.T, client *http.Client, ctx context.Context, base string) Verdict {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1beta/models?key="+key, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatal("request succeeded")
		}
		v := c.Err(err)
		if strings.Contains(v.Reason, key) {
			t.Errorf("Reason %q holds the key", v.Reason)
		}
		return v
	}

	t.Run("client timeout", func(t *testing.T) {
		v := do(t, &http.Client{Timeout: 50 * time.Millisecond}, context.Background(), srv.URL)
		if v.Class != Upstream || !strings.HasPrefix(v.Reason, "timeout: ") {
			t.Errorf("got %v %q, want upstream timeout", v.Class, v.Reason)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		v := do(t, http.DefaultClient, ctx, srv.URL)
		if v.Class != Upstream || v.Reason != "timeout: context deadline exceeded" {
			t.Errorf("got %v %q, want upstream timeout", v.Class, v.Reason)
		}
	})
	t.Run("client went away", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		v := do(t, http.DefaultClient, ctx, srv.URL)
		if v.Class != Canceled {
			t.Errorf("got %v %q, want canceled", v.Class, v.Reason)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		v := do(t, http.DefaultClient, context.Background(), closed)
		if v.Class != Upstream || !strings.HasPrefix(v.Reason, "connection refused: dial tcp ") {
			t.Errorf("got %v %q, want upstream connection refused", v.Class, v.Reason)
		}
	})
}
