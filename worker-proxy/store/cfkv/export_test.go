package cfkv

import "time"

// LastWrite is when s last wrote its usage record (zero if never).
func LastWrite(s *Store) time.Time {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if len(s.written) == 0 {
		return time.Time{}
	}
	return s.written[len(s.written)-1].UpdatedAt
}

// FlushIntervalOf is s's usage flush interval, stretched as it stands.
func FlushIntervalOf(s *Store) time.Duration {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return s.flushInterval(s.cfg.Now())
}
