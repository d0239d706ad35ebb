package deploy

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Repo is a GitHub repository.
type Repo struct{ Owner, Name string }

var (
	ownerRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// ParseRepo reads OWNER/NAME, github.com/OWNER/NAME,
// https://github.com/OWNER/NAME[.git], git@github.com:OWNER/NAME[.git] or
// ssh://git@github.com/OWNER/NAME[.git].
func ParseRepo(s string) (Repo, error) {
	bad := fmt.Errorf("%q is not a GitHub repository: give OWNER/NAME or https://github.com/OWNER/NAME", redact(s))
	path := strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(path, "git@github.com:"):
		path = strings.TrimPrefix(path, "git@github.com:")
	case strings.Contains(path, "://"):
		u, err := url.Parse(path)
		if err != nil || !strings.EqualFold(u.Hostname(), "github.com") {
			return Repo{}, bad
		}
		path = strings.TrimPrefix(u.Path, "/")
	case strings.HasPrefix(strings.ToLower(path), "github.com/"):
		path = path[len("github.com/"):]
	}
	path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), ".git")
	owner, name, ok := strings.Cut(path, "/")
	if !ok || !ownerRE.MatchString(owner) || !nameRE.MatchString(name) || name == "." || name == ".." {
		return Repo{}, bad
	}
	return Repo{Owner: owner, Name: name}, nil
}

// repoOf reads OWNER/NAME from a remote's URL: any form ParseRepo takes,
// or the last two path elements of another host's URL, such as an SSH host
// alias (git@github-work:OWNER/NAME.git). A local path gives false.
func repoOf(remote string) (Repo, bool) {
	if r, err := ParseRepo(remote); err == nil {
		return r, true
	}
	var path string
	if strings.Contains(remote, "://") {
		u, err := url.Parse(remote)
		if err != nil || u.Scheme == "file" || u.Host == "" {
			return Repo{}, false
		}
		path = u.Path
	} else if host, p, ok := strings.Cut(remote, ":"); ok && !strings.ContainsAny(host, `/\`) && len(host) > 1 {
		path = p // scp-like user@host:path; "C:" is a Windows drive, not a host
	} else {
		return Repo{}, false
	}
	parts := strings.Split(strings.TrimSuffix(strings.Trim(path, "/"), ".git"), "/")
	if len(parts) < 2 {
		return Repo{}, false
	}
	r, err := ParseRepo(parts[len(parts)-2] + "/" + parts[len(parts)-1])
	return r, err == nil
}

func (r Repo) String() string { return r.Owner + "/" + r.Name }

// Same reports whether r and o name the same repository (GitHub ignores case).
func (r Repo) Same(o Repo) bool {
	return strings.EqualFold(r.Owner, o.Owner) && strings.EqualFold(r.Name, o.Name)
}

// UserSite reports whether r is the OWNER.github.io repository, whose
// Pages site is the domain root.
func (r Repo) UserSite() bool { return strings.EqualFold(r.Name, r.Owner+".github.io") }

// Origin is the Pages site's origin, the proxy's ALLOWED_ORIGINS entry.
func (r Repo) Origin() string { return "https://" + strings.ToLower(r.Owner) + ".github.io" }

// Prefix is the path the site is served under: /NAME, or empty for a user site.
func (r Repo) Prefix() string {
	if r.UserSite() {
		return ""
	}
	return "/" + r.Name
}

// PagesURL is where GitHub Pages serves the dashboard.
func (r Repo) PagesURL() string { return r.Origin() + r.Prefix() + "/" }

// WebURL is the repository's page on GitHub.
func (r Repo) WebURL() string { return "https://github.com/" + r.String() }

// CloneURL is the default URL to push to.
func (r Repo) CloneURL() string { return r.WebURL() + ".git" }

// Image is the container image release.yml publishes.
func (r Repo) Image() string { return "ghcr.io/" + strings.ToLower(r.String()) }

// redact drops the user information (a token, a password) from a URL, so
// it can be printed.
func redact(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
