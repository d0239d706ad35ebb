package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// httpProxy is a forward HTTP proxy for http:// targets that requires
// Basic proxy credentials, counting the requests it relays.
func httpProxy(t *testing.T, user, pass string) (string, *atomic.Int64) {
	var n atomic.Int64
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != want {
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Authorization")
		res, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		n.Add(1)
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body)
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "http://", "http://"+user+":"+pass+"@", 1), &n
}

// socks5Proxy is a SOCKS5 server (RFC 1928, username/password auth of RFC
// 1929) counting the connections it relays.
func socks5Proxy(t *testing.T, user, pass string) (string, *atomic.Int64) {
	var n atomic.Int64
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if target, ok := socksHandshake(c, user, pass); ok {
					up, err := net.Dial("tcp", target)
					if err != nil {
						c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
						return
					}
					defer up.Close()
					c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
					n.Add(1)
					go io.Copy(up, c)
					io.Copy(c, up)
				}
			}()
		}
	}()
	return "socks5://" + user + ":" + pass + "@" + ln.Addr().String(), &n
}

func socksHandshake(c net.Conn, user, pass string) (string, bool) {
	r := bufio.NewReader(c)
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r, hdr); err != nil || hdr[0] != 5 {
		return "", false
	}
	methods := make([]byte, hdr[1])
	io.ReadFull(r, methods)
	if !strings.Contains(string(methods), "\x02") {
		c.Write([]byte{5, 0xff})
		return "", false
	}
	c.Write([]byte{5, 2})
	b := make([]byte, 2)
	io.ReadFull(r, b)
	u := make([]byte, b[1])
	io.ReadFull(r, u)
	io.ReadFull(r, b[:1])
	p := make([]byte, b[0])
	io.ReadFull(r, p)
	if string(u) != user || string(p) != pass {
		c.Write([]byte{1, 1})
		return "", false
	}
	c.Write([]byte{1, 0})
	req := make([]byte, 4)
	if _, err := io.ReadFull(r, req); err != nil || req[1] != 1 {
		return "", false
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(r, ip)
		host = net.IP(ip).String()
	case 3:
		io.ReadFull(r, b[:1])
		name := make([]byte, b[0])
		io.ReadFull(r, name)
		host = string(name)
	case 4:
		ip := make([]byte, 16)
		io.ReadFull(r, ip)
		host = net.IP(ip).String()
	}
	io.ReadFull(r, b)
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(b)))), true
}

func TestOutboundProxyPerKey(t *testing.T) {
	const user, pass = "proxyuser", "test-proxy-password-7Qx"
	httpURL, viaHTTP := httpProxy(t, user, pass)
	socksURL, viaSOCKS := socks5Proxy(t, user, pass)
	dead, _ := net.Listen("tcp4", "127.0.0.1:0")
	deadURL := "socks5://" + dead.Addr().String()
	dead.Close() // nothing listens: the proxy is down

	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	add := func(name, proxyURL string) (string, string) {
		secret := fmt.Sprintf("sk-test-outproxy-%s-%08d", name, keySeq.Add(1))
		body := map[string]any{"provider": "openai", "apiKey": secret}
		if proxyURL != "" {
			body["proxy"] = proxyURL
		}
		r := p.admin("POST", "/admin/keys", body)
		if r.Status != http.StatusCreated {
			t.Fatalf("add key: %d %s", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), pass) {
			t.Fatalf("the add answer shows the proxy password: %s", r.Body)
		}
		return r.JSON(t)["keyId"].(string), secret
	}
	httpID, httpSecret := add("http", httpURL)
	socksID, socksSecret := add("socks", socksURL)
	deadID, deadSecret := add("dead", deadURL)
	directID, directSecret := add("direct", "")

	served := map[string]int{}
	for range 12 {
		r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		served[r.Header.Get("X-KeyPool-Key-Id")]++
	}
	t.Logf("served by key: http proxy %d, socks5 proxy %d, dead proxy %d, direct %d; via HTTP proxy %d, via SOCKS5 %d",
		served[httpID], served[socksID], served[deadID], served[directID], viaHTTP.Load(), viaSOCKS.Load())
	if served[httpID] == 0 || int64(served[httpID]) != viaHTTP.Load() || int64(len(requestsWith(f, httpSecret))) != viaHTTP.Load() {
		t.Fatalf("the HTTP-proxied key served %d, the proxy relayed %d, the upstream saw it %d times: want all equal and > 0", served[httpID], viaHTTP.Load(), len(requestsWith(f, httpSecret)))
	}
	if served[socksID] == 0 || viaSOCKS.Load() < 1 || len(requestsWith(f, socksSecret)) != served[socksID] {
		t.Fatalf("the SOCKS5-proxied key served %d over %d proxied connections", served[socksID], viaSOCKS.Load())
	}
	// Fail closed: the dead proxy fails the attempt (upstream trouble,
	// retried on another key) and the key never calls direct.
	if served[deadID] != 0 || len(requestsWith(f, deadSecret)) != 0 {
		t.Fatalf("the key behind a dead proxy served %d and reached the upstream %d times: it went direct", served[deadID], len(requestsWith(f, deadSecret)))
	}
	k := keyStatusOf(t, p, deadID)
	if k.LastError == nil || k.LastError.Status != 502 || k.DisabledReason != "" {
		t.Fatalf("dead-proxy key: lastError %+v disabled %q, want a 502 and not disabled", k.LastError, k.DisabledReason)
	}
	if served[directID] == 0 {
		t.Fatal("the direct key served nothing")
	}
	// The password is a secret: masked in status, never logged.
	raw := p.admin("GET", "/admin/status?provider=openai", nil)
	if strings.Contains(string(raw.Body), pass) || !strings.Contains(string(raw.Body), "proxyuser:xxxxx@") {
		t.Fatalf("status shows the proxy unmasked or not at all: %s", raw.Body)
	}
	p.assertNoSecretsLogged(pass, httpSecret, socksSecret, deadSecret, directSecret)
	// Bad proxies are refused; "" removes one.
	for _, bad := range []string{"ftp://host:21", "not a url", "http://host:1/path?x"} {
		if r := p.admin("PUT", "/admin/keys/"+directID, map[string]any{"proxy": bad}); r.Status != 400 || strings.Contains(string(r.Body), bad) {
			t.Fatalf("proxy %q: %d %s, want 400 that does not echo it", bad, r.Status, r.Body)
		}
	}
	if r := p.admin("PUT", "/admin/keys/"+deadID, map[string]any{"proxy": ""}); r.Status != 200 || keyStatusOf(t, p, deadID).Proxy != "" {
		t.Fatalf("remove proxy: %d %s", r.Status, r.Body)
	}
}

func TestOutboundProxyList(t *testing.T) {
	const user, pass = "listuser", "test-list-proxy-pw-3Kd"
	httpURL, viaHTTP := httpProxy(t, user, pass)
	dead, _ := net.Listen("tcp4", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	// KEY_PROXIES with one entry: every key without its own proxy uses it.
	f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"KEY_PROXIES": httpURL})
	_, secrets := addKeys(t, f, p, "openai", "sk-test-list", fakeupstream.OK, fakeupstream.OK, fakeupstream.OK)
	for range 6 {
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	if viaHTTP.Load() != 6 || int64(len(f.Requests())) != 6 {
		t.Fatalf("the proxy relayed %d of 6 requests (upstream saw %d)", viaHTTP.Load(), len(f.Requests()))
	}
	p.assertNoSecretsLogged(append(secrets, pass)...)

	// A dead listed proxy fails closed; a key's own proxy wins over the list.
	f2, p2 := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"KEY_PROXIES": deadURL})
	_, listed := addKeys(t, f2, p2, "openai", "sk-test-listdead", fakeupstream.OK, fakeupstream.OK)
	own := fmt.Sprintf("sk-test-list-own-%08d", keySeq.Add(1))
	if r := p2.admin("POST", "/admin/keys", map[string]any{"provider": "openai", "apiKey": own, "proxy": httpURL}); r.Status != 201 {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	for range 4 {
		if r := p2.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	for _, s := range listed {
		if n := len(requestsWith(f2, s)); n != 0 {
			t.Fatalf("a key behind the dead listed proxy reached the upstream %d times: it went direct", n)
		}
	}
	if len(requestsWith(f2, own)) != 4 {
		t.Fatalf("the key with its own proxy served %d of 4", len(requestsWith(f2, own)))
	}
	// A bad list entry stops the start, without echoing the URL.
	cmd := exec(t, "KEY_PROXIES=ftp://u:"+pass+"@h:1", "ADMIN_KEY="+testAdminKey, "DATA_DIR="+t.TempDir(), "PORT=0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "KEY_PROXIES") || strings.Contains(string(out), pass) {
		t.Fatalf("bad KEY_PROXIES: err %v, output %s", err, out)
	}
}
