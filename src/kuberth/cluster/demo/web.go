// A demo web app for Kuberth's local node: answers on $PORT (8080) with the namespace and pod it
// runs in (POD_NAMESPACE and POD_NAME, from the downward API) and its environment.
package main

import (
	"fmt"
	"html"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
)

func page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		fmt.Fprintln(w, "ok")
		return
	}
	env := os.Environ()
	sort.Strings(env)
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><title>%s</title>\n", html.EscapeString(os.Getenv("POD_NAME")))
	fmt.Fprintf(&b, "<h1>Hello from pod %s in namespace %s</h1>\n",
		html.EscapeString(os.Getenv("POD_NAME")), html.EscapeString(os.Getenv("POD_NAMESPACE")))
	b.WriteString("<h2>Environment</h2>\n<ul>\n")
	for _, kv := range env {
		fmt.Fprintf(&b, "<li><code>%s</code></li>\n", html.EscapeString(kv))
	}
	b.WriteString("</ul>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, b.String())
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", page)
	log.Printf("listening on :%s as uid %d", port, os.Getuid())
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
