// A demo web app for Kuberth's local node: answers on $PORT (8080) with the namespace and pod it
// runs in (POD_NAMESPACE and POD_NAME, from the downward API; the hostname stands in for a missing
// POD_NAME) and its environment.
//
// With PROBES=on it also makes one outgoing connection on request, so tests can tell what a pod
// may reach through its NetworkPolicy: /dial?addr=host:port (a TCP connect) and /fetch?url=http://...
// (a GET). Each uses a fresh connection (a policy does not cut an established one) and answers
// 200 with what it got, or 502 with the error (refused or timed out: blocked). Off by default, so
// the demo is not a proxy into the cluster unless asked to be.
package main

import (
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

const probeTimeout = 3 * time.Second

func podName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}

func page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		fmt.Fprintln(w, "ok")
		return
	}
	env := os.Environ()
	sort.Strings(env)
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><title>%s</title>\n", html.EscapeString(podName()))
	// The namespace comes only from the downward API (an app made through Kuberth has no
	// POD_NAMESPACE): say nothing rather than something empty.
	where := ""
	if namespace := os.Getenv("POD_NAMESPACE"); namespace != "" {
		where = " in namespace " + namespace
	}
	fmt.Fprintf(&b, "<h1>Hello from pod %s%s</h1>\n", html.EscapeString(podName()), html.EscapeString(where))
	b.WriteString("<h2>Environment</h2>\n<ul>\n")
	for _, kv := range env {
		fmt.Fprintf(&b, "<li><code>%s</code></li>\n", html.EscapeString(kv))
	}
	b.WriteString("</ul>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, b.String())
}

func dial(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("addr")
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		http.Error(w, fmt.Sprintf("dial %s: %v", addr, err), http.StatusBadGateway)
		return
	}
	conn.Close()
	fmt.Fprintf(w, "connected to %s\n", addr)
}

func fetch(w http.ResponseWriter, r *http.Request) {
	target, err := url.Parse(r.URL.Query().Get("url"))
	if err != nil || target.Scheme != "http" {
		http.Error(w, "url must be an http:// URL", http.StatusBadRequest)
		return
	}
	client := &http.Client{
		Timeout:   probeTimeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	response, err := client.Get(target.String())
	if err != nil {
		http.Error(w, fmt.Sprintf("fetch %s: %v", target, err), http.StatusBadGateway)
		return
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(response.Body, 64<<10))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%d\n%s", response.StatusCode, body)
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", page)
	if os.Getenv("PROBES") == "on" {
		http.HandleFunc("/dial", dial)
		http.HandleFunc("/fetch", fetch)
	}
	log.Printf("listening on :%s as uid %d", port, os.Getuid())
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
