package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// A mode is one kind of request the load generator sends, with the check
// of its answer. Every target serves the proxy's relay paths
// (/api/{provider}/...), so the same request goes to each.
type mode struct {
	name     string
	provider string // openai or gemini: where the client token goes
	path     string // path and query on the target
	body     []byte
	stream   bool
	// check reads the whole answer and reports what is wrong with it.
	check func(res *http.Response, br *bodyReader, chunks int) error
}

// modeNames lists the modes in the order they run and are reported.
var modeNames = []string{"json", "stream", "gemini-json", "gemini-stream"}

const (
	openaiModel = "gpt-4o-mini"
	geminiModel = "gemini-2.5-flash"
)

var modes = map[string]*mode{
	"json": {
		name: "json", provider: "openai", path: "/api/openai/chat/completions",
		body:  []byte(`{"model":"` + openaiModel + `","messages":[{"role":"user","content":"Say hello in one short sentence."}]}`),
		check: checkJSON(fakeupstream.AnswerText(openaiModel)),
	},
	"stream": {
		name: "stream", provider: "openai", path: "/api/openai/chat/completions", stream: true,
		body:  []byte(`{"model":"` + openaiModel + `","stream":true,"messages":[{"role":"user","content":"Say hello in one short sentence."}]}`),
		check: checkOpenAIStream,
	},
	"gemini-json": {
		name: "gemini-json", provider: "gemini", path: "/api/gemini/models/" + geminiModel + ":generateContent",
		body:  []byte(`{"contents":[{"role":"user","parts":[{"text":"Say hello in one short sentence."}]}]}`),
		check: checkJSON(fakeupstream.AnswerText(geminiModel)),
	},
	"gemini-stream": {
		name: "gemini-stream", provider: "gemini", path: "/api/gemini/models/" + geminiModel + ":streamGenerateContent?alt=sse", stream: true,
		body:  []byte(`{"contents":[{"role":"user","parts":[{"text":"Say hello in one short sentence."}]}]}`),
		check: checkGeminiStream,
	},
}

// setClientToken puts the relay's client token where the provider's SDK
// puts its API key.
func setClientToken(h http.Header, provider, token string) {
	if provider == "gemini" {
		h["X-Goog-Api-Key"] = []string{token}
		return
	}
	h["Authorization"] = []string{"Bearer " + token}
}

// checkJSON accepts a 200 answer that holds the fake upstream's answer
// text.
func checkJSON(answer string) func(*http.Response, *bodyReader, int) error {
	want := []byte(answer)
	return func(res *http.Response, br *bodyReader, _ int) error {
		body, err := br.readAll()
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", res.StatusCode, truncate(string(body), 200))
		}
		if !bytes.Contains(body, want) {
			return fmt.Errorf("answer lacks the upstream's text: %s", truncate(string(body), 200))
		}
		return nil
	}
}

// chunkMark is in the text of every streamed chunk of the fake upstream.
var chunkMark = []byte("[chunk ")

// checkOpenAIStream accepts an SSE stream of chat.completion.chunk events
// with every text chunk, ending with data: [DONE].
func checkOpenAIStream(res *http.Response, br *bodyReader, chunks int) error {
	if err := streamStatus(res, br); err != nil {
		return err
	}
	got, done := 0, false
	err := sseEvents(br, func(data []byte) error {
		if done {
			return errors.New("event after [DONE]")
		}
		if bytes.Equal(data, []byte("[DONE]")) {
			done = true
		} else if bytes.Contains(data, chunkMark) {
			got++
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("stream after %d of %d chunks: %w", got, chunks, err)
	case got != chunks:
		return fmt.Errorf("stream had %d text chunks, want %d", got, chunks)
	case !done:
		return errors.New("stream ended without data: [DONE]")
	}
	return nil
}

// checkGeminiStream accepts a streamGenerateContent SSE stream with every
// text chunk, the last with finishReason STOP.
func checkGeminiStream(res *http.Response, br *bodyReader, chunks int) error {
	if err := streamStatus(res, br); err != nil {
		return err
	}
	got, stopped := 0, false
	err := sseEvents(br, func(data []byte) error {
		if stopped {
			return errors.New("event after the finishReason")
		}
		if bytes.Contains(data, chunkMark) {
			got++
		}
		stopped = bytes.Contains(data, []byte(`"finishReason":"STOP"`))
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("stream after %d of %d chunks: %w", got, chunks, err)
	case got != chunks:
		return fmt.Errorf("stream had %d text chunks, want %d", got, chunks)
	case !stopped:
		return errors.New(`stream ended without "finishReason":"STOP"`)
	}
	return nil
}

// streamStatus checks the head of a streamed answer.
func streamStatus(res *http.Response, br *bodyReader) error {
	if res.StatusCode != http.StatusOK {
		body, _ := br.readAll()
		return fmt.Errorf("status %d: %s", res.StatusCode, truncate(string(body), 200))
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("content type %q, want text/event-stream", ct)
	}
	return nil
}

// sseEvents calls fn with the data of each data: line of an SSE stream,
// as it arrives, until the stream ends.
func sseEvents(br *bodyReader, fn func(data []byte) error) error {
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return errors.New("SSE line longer than the read buffer")
		}
		line = bytes.TrimRight(line, "\r\n")
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if ferr := fn(bytes.TrimLeft(data, " ")); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			if len(line) != 0 {
				return errors.New("stream ended inside a line")
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// bodyReader reads answer bodies for one request loop, reusing its
// buffers from one request to the next.
type bodyReader struct {
	*bufio.Reader
	buf bytes.Buffer
}

func newBodyReader() *bodyReader {
	return &bodyReader{Reader: bufio.NewReaderSize(nil, 16<<10)}
}

// readAll reads the body to its end. The slice is valid until the next
// read.
func (br *bodyReader) readAll() ([]byte, error) {
	br.buf.Reset()
	_, err := br.buf.ReadFrom(br.Reader)
	return br.buf.Bytes(), err
}
