package postmortem

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rootuip/sre/pkg/web"
)

// API serves the post-mortem routes (see docs/postmortems.md).
type API struct {
	Store *Store
}

// Register mounts the routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/incidents/{id}/postmortem", a.generate)
	mux.HandleFunc("GET /api/v1/incidents/{id}/postmortem", a.get)
	mux.HandleFunc("GET /api/v1/incidents/{id}/action-items", a.listItems)
	mux.HandleFunc("POST /api/v1/incidents/{id}/action-items", a.addItem)
	mux.HandleFunc("PATCH /api/v1/incidents/{id}/action-items/{item}", a.updateItem)
}

const maxBody = 64 << 10

func actor(r *http.Request, given string) string {
	if given != "" {
		return given
	}
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		return u
	}
	return "api"
}

func fail(w http.ResponseWriter, err error) {
	var inv *InvalidError
	switch {
	case errors.As(err, &inv):
		web.Error(w, http.StatusBadRequest, "bad_data", err)
	case errors.Is(err, ErrNoDraft), errors.Is(err, ErrItemNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
	default:
		web.ServiceError(w, err)
	}
}

type generateRequest struct {
	Actor string `json:"actor,omitempty"`
}

func (a *API) generate(w http.ResponseWriter, r *http.Request) {
	var req generateRequest
	if r.ContentLength != 0 {
		if err := web.DecodeJSON(w, r, maxBody, &req); err != nil && !(r.ContentLength < 0 && strings.Contains(err.Error(), "EOF")) {
			web.Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
	}
	d, err := a.Store.Generate(r.Context(), r.PathValue("id"), actor(r, req.Actor))
	if err != nil {
		fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

// get answers JSON, or the Markdown itself with ?format=markdown or
// "Accept: text/markdown".
func (a *API) get(w http.ResponseWriter, r *http.Request) {
	d, err := a.Store.Draft(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	if r.URL.Query().Get("format") == "markdown" || strings.Contains(r.Header.Get("Accept"), "text/markdown") {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = w.Write([]byte(d.Markdown))
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func (a *API) listItems(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.Store.inc.Get(r.Context(), id); err != nil {
		fail(w, err)
		return
	}
	items, err := a.Store.ActionItems(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, items)
}

func (a *API) addItem(w http.ResponseWriter, r *http.Request) {
	var in ItemInput
	if err := web.DecodeJSON(w, r, maxBody, &in); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	in.Actor = actor(r, in.Actor)
	it, err := a.Store.AddActionItem(r.Context(), r.PathValue("id"), in)
	if err != nil {
		fail(w, err)
		return
	}
	web.JSON(w, http.StatusCreated, it)
}

func (a *API) updateItem(w http.ResponseWriter, r *http.Request) {
	item, err := strconv.ParseInt(r.PathValue("item"), 10, 64)
	if err != nil || item <= 0 {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("action item %q: want a positive number", r.PathValue("item")))
		return
	}
	var in ItemInput
	if err := web.DecodeJSON(w, r, maxBody, &in); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	in.Actor = actor(r, in.Actor)
	it, err := a.Store.UpdateActionItem(r.Context(), r.PathValue("id"), item, in)
	if err != nil {
		fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, it)
}
