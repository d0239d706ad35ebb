package docs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unicode"
)

// rootReadmeMaxLines keeps the root README what a newcomer reads in five
// minutes; the reference lives in the components' READMEs.
const rootReadmeMaxLines = 250

// repoRoot is the repository this file is in.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}()

// markdownFiles lists the repository's Markdown files, relative to the root.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != repoRoot && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" || d.Name() == "dist") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, _ := filepath.Rel(repoRoot, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	return files
}

var (
	fence      = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan   = regexp.MustCompile("`[^`]*`")
	link       = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	headingRe  = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	linkInText = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// prose is the file's lines outside fenced code blocks, with the line
// numbers they had.
func prose(text string) (lines []string, numbers []int) {
	in := false
	for i, l := range strings.Split(text, "\n") {
		if fence.MatchString(l) {
			in = !in
			continue
		}
		if !in {
			lines = append(lines, l)
			numbers = append(numbers, i+1)
		}
	}
	return lines, numbers
}

// slug is GitHub's anchor for a heading: lower case, punctuation and
// symbols dropped, spaces turned into hyphens.
func slug(heading string) string {
	heading = linkInText.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the anchors of a Markdown text's headings, with GitHub's
// -1, -2 … suffixes for repeated ones.
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	lines, _ := prose(text)
	for _, l := range lines {
		m := headingRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s := slug(m[2])
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// TestMarkdownLinks checks every relative link and image in every Markdown
// file: the file or directory exists, and an #anchor names a heading of
// the Markdown file it points into.
func TestMarkdownLinks(t *testing.T) {
	cache := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := cache[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			return nil, err
		}
		cache[path] = anchors(string(b))
		return cache[path], nil
	}
	checked := 0
	for _, file := range markdownFiles(t) {
		b, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		lines, numbers := prose(string(b))
		for i, l := range lines {
			for _, m := range link.FindAllStringSubmatch(codeSpan.ReplaceAllString(l, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				where := fmt.Sprintf("%s:%d: %s", file, numbers[i], target)
				path, anchor, _ := strings.Cut(target, "#")
				resolved := file
				if path != "" {
					if strings.HasPrefix(path, "/") {
						t.Errorf("%s: a link from the site root breaks on GitHub and on Pages; make it relative", where)
						continue
					}
					resolved = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
					if _, err := os.Stat(filepath.Join(repoRoot, resolved)); err != nil {
						t.Errorf("%s: no such file: %s", where, resolved)
						continue
					}
				}
				if anchor == "" || !strings.HasSuffix(resolved, ".md") {
					continue
				}
				a, err := anchorsOf(resolved)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				if !a[anchor] {
					t.Errorf("%s: %s has no heading with the anchor #%s", where, resolved, anchor)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no relative links found: the link pattern is broken")
	}
}

// TestReadmesBilingual checks that every README has a 中文 section and
// then an English one.
func TestReadmesBilingual(t *testing.T) {
	for _, file := range markdownFiles(t) {
		if !strings.EqualFold(filepath.Base(file), "README.md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		zh, en := -1, -1
		lines, _ := prose(string(b))
		for i, l := range lines {
			switch strings.TrimSpace(l) {
			case "## 中文":
				zh = i
			case "## English":
				en = i
			}
		}
		if zh < 0 || en < 0 || zh > en {
			t.Errorf("%s: want a \"## 中文\" section followed by a \"## English\" one (中文 line %d, English line %d)", file, zh, en)
		}
	}
}

// TestRootReadmeIsShort keeps the root README a five-minute read.
func TestRootReadmeIsShort(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > rootReadmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move reference material into worker-proxy/README.md, worker-proxy/DEPLOY.md, worker-proxy/PERFORMANCE.md or wasm/README.md and link to it", n, rootReadmeMaxLines)
	}
}

func TestSlug(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"中文", "中文"},
		{"Admin API", "admin-api"},
		{"More providers, and the OpenAI-compatible front door", "more-providers-and-the-openai-compatible-front-door"},
		{"Cloudflare KV：多个实例共享密钥", "cloudflare-kv多个实例共享密钥"},
		{"2. Turn on GitHub Pages (once)", "2-turn-on-github-pages-once"},
		{"Requests over time: `GET /admin/traffic`", "requests-over-time-get-admintraffic"},
		{"用 SDK 调用", "用-sdk-调用"},
	} {
		if got := slug(c.heading); got != c.want {
			t.Errorf("slug(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}
