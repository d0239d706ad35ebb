package kvemu

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves an Emulator over HTTP on a loopback address.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port, without a trailing slash.
	// The SDK's base URL is URL + "/client/v4/".
	URL string
	// Emu is the emulator served.
	Emu *Emulator

	srv       *http.Server
	ln        net.Listener
	done      chan struct{}
	closeOnce sync.Once
}

// Start serves New(opts) on 127.0.0.1 at a free port.
func Start(opts Options) (*Server, error) {
	return New(opts).Listen("127.0.0.1:0")
}

// Listen serves e on addr ("127.0.0.1:0" picks a free port). Closing the
// Server and calling Listen again on its address with the same Emulator
// brings the same data back, e.g. after simulating an outage.
func (e *Emulator) Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:  "http://" + ln.Addr().String(),
		Emu:  e,
		srv:  &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening and drops open connections at once, so clients see
// the API as unreachable. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		_ = s.srv.Close()
		<-s.done
	})
}
