package redact

import "io"

// Reader returns rc with s's secrets masked in what it yields, holding at
// most a few times the longest form between reads. A form split across
// two reads is still found. With keepLength, each mask is padded (with the
// separator's stand-in) to the length it replaces, so a declared
// Content-Length stays true. When s is empty, rc itself is returned.
func (s *Scrubber) Reader(rc io.ReadCloser, keepLength bool) io.ReadCloser {
	if s.Empty() {
		return rc
	}
	return &reader{s: s, rc: rc, keep: keepLength}
}

type reader struct {
	s    *Scrubber
	rc   io.ReadCloser
	keep bool
	st   state
	// carry holds input bytes that wait for more; out holds scrubbed bytes
	// not yet returned (only when the caller's buffer was too small).
	carry, out []byte
	small      []byte
	err        error
}

func (r *reader) Close() error { return r.rc.Close() }

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(r.out) > 0 {
			n := copy(p, r.out)
			r.out = r.out[n:]
			return n, nil
		}
		if r.err != nil {
			if len(r.carry) > 0 {
				// End of input: what waited is decided now.
				var out []byte
				out, _ = r.s.scrub(nil, r.carry, &r.st, true, r.keep)
				r.carry, r.out = nil, out
				continue
			}
			return 0, r.err
		}
		// Work in p when it has room for the carry and fresh input, else in
		// a buffer of our own; scrubbing in place is safe because output
		// never runs ahead of input.
		need := len(r.carry) + r.s.maxLen + 512
		work, inPlace := p, len(p) >= need
		if !inPlace {
			if cap(r.small) < need {
				r.small = make([]byte, need)
			}
			work = r.small[:need]
		}
		c := copy(work, r.carry)
		n, err := r.rc.Read(work[c:])
		r.err = err
		if n == 0 && err == nil {
			continue
		}
		buf := work[:c+n]
		out, hold := r.s.scrub(work[:0], buf, &r.st, err != nil, r.keep)
		r.carry = append(r.carry[:0], buf[hold:]...)
		if inPlace {
			if len(out) == 0 {
				continue
			}
			if &out[0] != &p[0] {
				// Never so (output never outruns input), but be sure.
				r.out = out
				continue
			}
			return len(out), nil
		}
		r.out = out
	}
}
