package pool

// Gemini counts quota per Google Cloud project, not per key: keys of one
// project share one quota. The pool groups keys by Key.Project.

// SetProject records the project a provider named for the key when the
// key has none yet; an operator's setting is never replaced. It returns
// the key's new configuration, for the caller to persist, and whether it
// changed.
func (p *Pool) SetProject(e *Entry, project string) (Key, bool) {
	if project == "" || ValidateProject(project) != nil {
		return Key{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := e.Key()
	if k.Project != "" {
		return Key{}, false
	}
	k.Project, k.ProjectLearned = project, true
	k.Revision++
	e.cfg.Store(newRec(&k))
	return k, true
}

// SameProject returns provider's keys whose project is project (other
// than ""), in their stable order.
func (p *Pool) SameProject(provider, project string) []*Entry {
	if project == "" {
		return nil
	}
	var out []*Entry
	for _, e := range p.Entries(provider) {
		if e.Project() == project {
			out = append(out, e)
		}
	}
	return out
}

// Projects counts provider's independent quotas: the distinct projects
// its keys name, and the keys whose project is unknown (each may be its
// own project).
func (p *Pool) Projects(provider string) (projects, unknown int) {
	seen := map[string]bool{}
	for _, e := range p.Entries(provider) {
		pr := e.Project()
		switch {
		case pr == "":
			unknown++
		case !seen[pr]:
			seen[pr] = true
			projects++
		}
	}
	return projects, unknown
}

// Project returns the key's project, "" when unknown.
func (e *Entry) Project() string { return e.cfg.Load().extra().project }

// Proxy returns the key's outbound proxy URL, "" for a direct connection.
// It holds the proxy's password: never show it unmasked (see MaskProxy).
func (e *Entry) Proxy() string { return e.cfg.Load().extra().proxy }
