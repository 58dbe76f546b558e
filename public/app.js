// Textdesk's one browser script. It only enhances server-rendered pages: every action is also a
// plain form. Loaded as an external file so the Content-Security-Policy can forbid inline script.
// The page hooks, routes and events it relies on are docs/team-inbox-contract.md, between the server side
// and this script (data-* attributes on <body>, #ticket-list, #timeline, /inbox/events, ...).
(function (root) {
  'use strict'

  // ---------------------------------------------------------------------------------------------
  // SMS parts: a copy of src/messaging/sms-parts.ts (GSM 03.38 with its extension table, else
  // UCS-2; 160/153 and 70/67). test/browser/sms-parts.test.ts runs this copy over the corpus the
  // server's implementation is tested against (test/fixtures/sms-parts.json).

  const GSM_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà'
  const GSM_EXTENSION = '^{}\\[~]|€\f'

  function smsParts (text) {
    const sizes = []
    let gsm = true
    for (const ch of text) {
      if (GSM_BASIC.indexOf(ch) >= 0) sizes.push(1)
      else if (GSM_EXTENSION.indexOf(ch) >= 0) sizes.push(2)
      else { gsm = false; break }
    }
    if (!gsm) {
      // UCS-2 counts UTF-16 code units; a character outside the BMP takes two, kept in one part.
      sizes.length = 0
      for (const ch of text) sizes.push(ch.length)
    }
    const encoding = gsm ? 'GSM-7' : 'UCS-2'
    const single = gsm ? 160 : 70
    const multi = gsm ? 153 : 67
    const units = sizes.reduce(function (a, b) { return a + b }, 0)
    if (units <= single) return { encoding, units, parts: units === 0 ? 0 : 1 }
    // Concatenated parts carry a header; a two-unit character never straddles two parts.
    let parts = 1
    let used = 0
    for (const size of sizes) {
      if (used + size > multi) { parts++; used = 0 }
      used += size
    }
    return { encoding, units, parts }
  }

  root.TextdeskSms = { smsParts }
  if (typeof root.document === 'undefined') return

  const document = root.document
  const body = document.body
  const me = body.getAttribute('data-agent-id') || ''
  const ticketId = body.getAttribute('data-ticket-id') || ''
  const view = body.getAttribute('data-view') || ''
  const THROTTLE_MS = 300

  function csrfToken () {
    const field = document.querySelector('input[name=_csrf]')
    return field ? field.value : ''
  }

  // ---------------------------------------------------------------------------------------------
  // Local times: the server writes UTC; the agent reads their own clock.

  // Only a time the server wrote as a UTC clock time ("2026-01-01 09:00 UTC") is rewritten; a
  // duration ("5m", the list's waiting time) keeps its words. In the list, today's times show the
  // clock only.
  function localTimes (scope) {
    const today = new Date().toDateString()
    scope.querySelectorAll('time[datetime]').forEach(function (el) {
      const iso = el.getAttribute('datetime')
      const d = new Date(iso)
      if (iso && !isNaN(d.getTime()) && el.getAttribute('data-local') === null && /UTC\s*$/.test(el.textContent)) {
        el.setAttribute('data-local', '')
        el.title = iso
        el.textContent = el.closest('#ticket-list') !== null && d.toDateString() === today
          ? d.toLocaleTimeString([], { timeStyle: 'short' })
          : el.closest('#ticket-list') !== null
            ? d.toLocaleString([], { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' })
            : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })
      }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // Announcements: one polite live region of our own. The lists and the timeline are not live
  // regions (a refetch would read everything again); only what is new is said, once.

  let announcer = null
  function announce (text) {
    if (announcer === null) return
    announcer.textContent = ''
    // A new text node after a tick, so the same sentence twice in a row is still spoken.
    setTimeout(function () { announcer.textContent = text }, 60)
  }

  // ---------------------------------------------------------------------------------------------
  // Replacing a fragment in place. Nodes keep their identity when their key (data-item-id,
  // data-ticket-id or id) or, unkeyed, their position and tag match, so focus, selection, scroll
  // and screen-reader position survive; only what changed is touched. Returns the added elements.

  function keyOf (node) {
    if (node.nodeType !== 1) return null
    return node.getAttribute('data-item-id') || node.getAttribute('data-ticket-id') || node.id || null
  }

  function syncAttributes (el, from) {
    for (const a of Array.from(el.attributes)) {
      if (!from.hasAttribute(a.name)) el.removeAttribute(a.name)
    }
    for (const a of Array.from(from.attributes)) {
      if (el.getAttribute(a.name) !== a.value) el.setAttribute(a.name, a.value)
    }
  }

  function morphChildren (parent, source, added) {
    const keyed = new Map()
    const unkeyed = []
    for (const n of Array.from(parent.childNodes)) {
      const k = keyOf(n)
      if (k !== null && !keyed.has(k)) keyed.set(k, n)
      else unkeyed.push(n)
    }
    const result = []
    for (const n of Array.from(source.childNodes)) {
      const k = keyOf(n)
      let match = null
      if (k !== null) {
        match = keyed.get(k) || null
        if (match !== null) keyed.delete(k)
      } else {
        const i = unkeyed.findIndex(function (o) { return o.nodeType === n.nodeType && o.nodeName === n.nodeName && keyOf(o) === null })
        if (i >= 0) match = unkeyed.splice(i, 1)[0]
      }
      if (match === null) {
        result.push(n)
        if (n.nodeType === 1) added.push(n)
      } else {
        result.push(morphNode(match, n, added))
      }
    }
    keyed.forEach(function (n) { n.remove() })
    unkeyed.forEach(function (n) { n.remove() })
    result.forEach(function (n, i) {
      const at = parent.childNodes[i]
      if (at !== n) parent.insertBefore(n, at || null)
    })
  }

  function morphNode (old, next, added) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== next.nodeValue) old.nodeValue = next.nodeValue
      return old
    }
    if (old.isEqualNode(next)) return old
    syncAttributes(old, next)
    morphChildren(old, next, added)
    return old
  }

  /** Puts `html` (a fragment whose root may be the target itself, by id) into `target`. */
  function morph (target, html) {
    const tpl = document.createElement('template')
    tpl.innerHTML = html.trim()
    localTimes(tpl.content)
    let source = tpl.content
    const first = source.firstElementChild
    if (source.childElementCount === 1 && first !== null && target.id !== '' && first.id === target.id) {
      syncAttributes(target, first)
      source = first
    }
    const added = []
    morphChildren(target, source, added)
    return added
  }

  // ---------------------------------------------------------------------------------------------
  // Fetching fragments: at most one request per target per 300 ms, the last one always trailing,
  // never two at once. A burst of events costs a few fetches.

  // Spaced by performance.now(), which never jumps with the wall clock. A timer may fire a few ms
  // early on a busy machine; then it waits out the rest instead of fetching early.
  function throttled (fn, ms) {
    let last = -Infinity
    let timer = null
    let running = false
    let again = false
    function run () {
      timer = null
      const wait = last + ms - performance.now()
      if (wait > 0) { timer = setTimeout(run, wait); return }
      running = true
      last = performance.now()
      // The spacing counts from when fn runs: other microtasks (a burst of events) may go first.
      Promise.resolve().then(function () { last = performance.now(); return fn() }).catch(function () {}).then(function () {
        running = false
        if (again) { again = false; schedule() }
      })
    }
    function schedule () {
      if (running) { again = true; return }
      if (timer !== null) return
      timer = setTimeout(run, Math.max(0, last + ms - performance.now()))
    }
    return schedule
  }

  let leaving = false
  function sessionEnded () {
    // The draft is already in localStorage; the reload lands on the sign-in page, which returns here.
    if (!leaving) { leaving = true; root.location.reload() }
  }

  function get (url, accept) {
    return fetch(url, { headers: { accept }, credentials: 'same-origin', cache: 'no-store' }).then(function (res) {
      if (res.status === 401 || (res.redirected && /\/login(\?|$)/.test(new URL(res.url).pathname + '?'))) {
        sessionEnded()
        throw new Error('signed out')
      }
      if (!res.ok) throw new Error('HTTP ' + res.status)
      return accept === 'application/json' ? res.json() : res.text()
    })
  }

  // Nodes that stay keep their place on screen by themselves (the browser's scroll anchoring
  // follows them when rows arrive above). A chat pane that was at its newest message stays there.
  function keepScroll (el, fn) {
    const stick = el.getAttribute('data-stick-bottom') !== null && el.scrollHeight - el.clientHeight - el.scrollTop < 8
    const out = fn()
    if (stick) el.scrollTop = el.scrollHeight
    return out
  }

  // ---------------------------------------------------------------------------------------------
  // The list, the counts and the tab title.

  // The server counts unread tickets up to 100 and writes "(99+)" from there; so does the script.
  const UNREAD_CAP = 100
  const baseTitle = document.title.replace(/^\(\d+\+?\) /, '')

  function setUnread (n) {
    const shown = n >= UNREAD_CAP ? (UNREAD_CAP - 1) + '+' : String(n)
    document.title = n > 0 ? '(' + shown + ') ' + baseTitle : baseTitle
  }

  function listUrl () {
    const params = new URLSearchParams()
    const here = new URLSearchParams(root.location.search)
    params.set('view', view || here.get('view') || 'open')
    if (body.classList.contains('page-inbox') || !ticketId) {
      const cursor = here.get('cursor')
      if (cursor) params.set('cursor', cursor)
      // A search page refreshes its results: the same query and filters again.
      if ((here.get('q') || '').trim() !== '') {
        ['q', 'status', 'assignee', 'from', 'to'].forEach(function (name) {
          const value = here.get(name)
          if (value) params.set(name, value)
        })
      }
    }
    return '/inbox/list?' + params.toString()
  }

  function markCurrentRow () {
    if (!ticketId) return
    document.querySelectorAll('#ticket-list .ticket-row').forEach(function (row) {
      const current = row.getAttribute('data-ticket-id') === ticketId
      row.classList.toggle('current', current)
      const link = row.querySelector('a[href^="/tickets/"]')
      if (link) {
        if (current) link.setAttribute('aria-current', 'page')
        else link.removeAttribute('aria-current')
      }
    })
  }

  function rowName (row) {
    const who = row.querySelector('.customer')
    const link = row.querySelector('a[href^="/tickets/"]')
    return ((who && who.textContent) || (link && link.textContent) || 'a customer').trim().replace(/\s+/g, ' ')
  }

  const refreshList = throttled(function () {
    const list = document.getElementById('ticket-list')
    if (list === null) return
    const selected = document.querySelector('#ticket-list .ticket-row.selected')
    const selectedId = selected ? selected.getAttribute('data-ticket-id') : null
    const wasUnread = new Set(Array.from(list.querySelectorAll('.ticket-row.unread')).map(function (r) { return r.getAttribute('data-ticket-id') }))
    return get(listUrl(), 'text/html').then(function (html) {
      keepScroll(list, function () { morph(list, html) })
      markCurrentRow()
      if (selectedId !== null) {
        const again = list.querySelector('.ticket-row[data-ticket-id="' + selectedId + '"]')
        if (again) again.classList.add('selected')
      }
      const fresh = Array.from(list.querySelectorAll('.ticket-row.unread')).filter(function (r) {
        const id = r.getAttribute('data-ticket-id')
        return !wasUnread.has(id) && id !== ticketId
      })
      if (fresh.length === 1) announce('New message from ' + rowName(fresh[0]) + '.')
      else if (fresh.length > 1) announce(fresh.length + ' tickets have new messages.')
    })
  }, THROTTLE_MS)

  const refreshCounts = throttled(function () {
    if (document.querySelector('.view-counts') === null && !me) return
    return get('/inbox/counts', 'application/json').then(function (counts) {
      document.querySelectorAll('.view-counts [data-count-for]').forEach(function (el) {
        const n = counts[el.getAttribute('data-count-for')]
        if (typeof n === 'number' && el.textContent !== String(n)) el.textContent = String(n)
      })
      if (typeof counts.unread === 'number') setUnread(counts.unread)
    })
  }, THROTTLE_MS)

  // ---------------------------------------------------------------------------------------------
  // The ticket's timeline.

  function newestItemId () {
    const items = document.querySelectorAll('#timeline > li[data-item-id]')
    return items.length ? items[items.length - 1].getAttribute('data-item-id') : null
  }

  function excerpt (text) {
    const t = text.trim().replace(/\s+/g, ' ')
    return t.length > 140 ? t.slice(0, 139) + '…' : t
  }

  const refreshTimeline = throttled(function () {
    const timeline = document.getElementById('timeline')
    if (timeline === null || !ticketId) return
    refreshHead()
    return get('/tickets/' + encodeURIComponent(ticketId) + '/timeline', 'text/html').then(function (html) {
      const scroller = timeline.closest('[data-stick-bottom]') || timeline
      const added = keepScroll(scroller, function () { return morph(timeline, html) })
      const inbound = added.filter(function (el) { return el.classList.contains('inbound') })
      if (inbound.length > 0) {
        const last = inbound[inbound.length - 1]
        const text = last.querySelector('.bubble')
        announce('New message from the customer: ' + excerpt(text ? text.textContent : last.textContent))
      }
      // What is on screen counts as seen, unless the agent is already writing: then the server's
      // collision check should still warn about what arrived while they wrote.
      const seen = document.querySelector('form.reply input[name=seen]')
      const reply = document.getElementById('reply-body')
      const id = newestItemId()
      if (seen && id !== null && (!reply || reply.value.trim() === '')) seen.value = id
    })
  }, THROTTLE_MS)

  // The ticket's header (status, assignee and their forms) follows the same events, unless the
  // agent is using one of its controls right now.
  function refreshHead () {
    const head = document.getElementById('ticket-head')
    if (head === null || head.contains(document.activeElement)) return
    const view = body.getAttribute('data-view') || 'open'
    get('/tickets/' + encodeURIComponent(ticketId) + '/head?view=' + encodeURIComponent(view), 'text/html').then(function (html) {
      if (!head.contains(document.activeElement)) morph(head, html)
    }).catch(function () {})
  }

  // ---------------------------------------------------------------------------------------------
  // The simulator's phone (and any other [data-live-fragment]): refetched on every ticket event.

  const fragmentRefreshers = []
  function liveFragment (el) {
    const refresh = throttled(function () {
      return get(el.getAttribute('data-live-fragment'), 'text/html').then(function (html) {
        keepScroll(el, function () { morph(el, html) })
      })
    }, THROTTLE_MS)
    fragmentRefreshers.push(refresh)
  }

  // ---------------------------------------------------------------------------------------------
  // Presence: "Bo is viewing", "Bo is typing…".

  function sendPresence (state) {
    if (!ticketId) return
    const url = '/tickets/' + encodeURIComponent(ticketId) + '/presence'
    const form = new URLSearchParams({ state, _csrf: csrfToken() })
    if (state === 'left' && navigator.sendBeacon) {
      navigator.sendBeacon(url, form)
      return
    }
    fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrfToken(), accept: 'application/json' },
      body: form,
      keepalive: state === 'left'
    }).then(function (res) { if (res.status === 401) sessionEnded() }).catch(function () {})
  }

  function presenceWords (viewers) {
    const others = viewers.filter(function (v) { return String(v.agentId) !== me })
    const typing = others.filter(function (v) { return v.typing }).map(function (v) { return v.name })
    const viewing = others.filter(function (v) { return !v.typing }).map(function (v) { return v.name })
    const list = function (names) { return names.length <= 2 ? names.join(' and ') : names.slice(0, -1).join(', ') + ' and ' + names[names.length - 1] }
    const out = []
    if (typing.length) out.push(list(typing) + (typing.length === 1 ? ' is typing…' : ' are typing…'))
    if (viewing.length) out.push(list(viewing) + (viewing.length === 1 ? ' is viewing' : ' are viewing'))
    return out.join(' · ')
  }

  function showPresence (data) {
    const el = document.getElementById('presence')
    if (el === null || String(data.ticketId) !== ticketId) return
    const words = presenceWords(Array.isArray(data.viewers) ? data.viewers : [])
    if (el.textContent.trim() !== words) el.textContent = words
    el.classList.toggle('someone', words !== '')
  }

  function startPresence () {
    if (!ticketId || document.getElementById('timeline') === null) return
    if (!document.hidden) sendPresence('viewing')
    setInterval(function () { if (!document.hidden) sendPresence('viewing') }, 20000)
    document.addEventListener('visibilitychange', function () { if (!document.hidden) sendPresence('viewing') })
    root.addEventListener('pagehide', function () { sendPresence('left') })
    const reply = document.getElementById('reply-body')
    let lastTyping = 0
    if (reply) {
      reply.addEventListener('input', function () {
        const now = Date.now()
        if (now - lastTyping >= 3000) { lastTyping = now; sendPresence('typing') }
      })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The event stream. EventSource reconnects by itself with Last-Event-ID; when it gives up (the
  // server answered with an error), we reconnect with ?lastEventId= after a growing pause.

  function setLiveStatus (state) {
    let el = document.getElementById('live-status')
    if (el === null) {
      const nav = document.querySelector('header.top nav') || document.querySelector('header.top')
      if (nav === null) return
      el = document.createElement('span')
      el.id = 'live-status'
      el.setAttribute('role', 'status')
      nav.insertBefore(el, nav.firstChild)
    }
    el.classList.toggle('reconnecting', state === 'reconnecting')
    el.classList.toggle('restored', state === 'restored')
    el.textContent = state === 'reconnecting' ? 'Reconnecting…' : state === 'restored' ? 'Live again' : ''
  }

  function startStream (onTicket) {
    if (typeof root.EventSource !== 'function') return
    let lastId = body.getAttribute('data-last-event-id') || ''
    let pause = 1000
    let dropped = false
    let restoredTimer = null
    let es = null
    root.addEventListener('pagehide', function () {
      leaving = true
      if (es !== null) es.close()
    })
    function connect () {
      es = new root.EventSource('/inbox/events' + (lastId ? '?lastEventId=' + encodeURIComponent(lastId) : ''))
      es.addEventListener('open', function () {
        pause = 1000
        if (dropped) {
          dropped = false
          setLiveStatus('restored')
          clearTimeout(restoredTimer)
          restoredTimer = setTimeout(function () { setLiveStatus(null) }, 4000)
        }
      })
      const source = es
      es.addEventListener('error', function () {
        if (leaving) return
        dropped = true
        clearTimeout(restoredTimer)
        setLiveStatus('reconnecting')
        if (source.readyState === root.EventSource.CLOSED) {
          source.close()
          setTimeout(function () {
            // A stream refused for want of a session: the counts say so with a 401, and sessionEnded() reloads.
            get('/inbox/counts', 'application/json').catch(function () {}).then(function () { if (!leaving) connect() })
          }, pause)
          pause = Math.min(pause * 2, 30000)
        }
      })
      es.addEventListener('ticket', function (e) {
        if (e.lastEventId) lastId = e.lastEventId
        let data = {}
        try { data = JSON.parse(e.data) } catch (err) {}
        onTicket(data)
      })
      es.addEventListener('presence', function (e) {
        try { showPresence(JSON.parse(e.data)) } catch (err) {}
      })
      es.addEventListener('reload', function () {
        source.close()
        sessionEnded()
      })
    }
    connect()
  }

  // ---------------------------------------------------------------------------------------------
  // The composer: counter, limits, confirmation above N parts, drafts, Ctrl/Cmd+Enter.

  function storage () {
    try { return root.localStorage } catch (err) { return null }
  }

  function draftKey (kind) {
    return 'textdesk.draft.' + me + '.' + ticketId + '.' + kind
  }

  function nonce () {
    return Math.random().toString(36).slice(2, 10)
  }

  function describedBy (el, id) {
    const ids = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean)
    if (ids.indexOf(id) < 0) ids.push(id)
    el.setAttribute('aria-describedby', ids.join(' '))
  }

  function inTimeline (text) {
    if (text === null || text.trim() === '') return false
    const wanted = text.trim().replace(/\r\n/g, '\n')
    return Array.from(document.querySelectorAll('#timeline > li .bubble')).some(function (b) { return b.textContent.trim() === wanted })
  }

  function drafts (form, area, kind) {
    const store = storage()
    if (store === null || !ticketId) return
    const key = draftKey(kind)
    const sentKey = key + '.sent'
    const marker = store.getItem(sentKey)
    const saved = store.getItem(key)
    if (marker !== null && (root.location.hash === '#sent-' + marker || inTimeline(saved))) {
      // The server redirected to the address this form asked for, or the text is in the thread:
      // the send went through. (A refusal re-renders the form; an expired session lands on sign-in.)
      store.removeItem(key)
      store.removeItem(sentKey)
      root.history.replaceState(root.history.state, '', root.location.pathname + root.location.search)
    } else {
      if (area.value.trim() === '' && saved !== null && saved.trim() !== '') {
        area.value = saved
        const note = document.createElement('p')
        note.className = 'draft-restored'
        note.id = area.id + '-restored'
        note.textContent = 'Your unsent draft was restored.'
        area.insertAdjacentElement('afterend', note)
        describedBy(area, note.id)
      } else if (area.value.trim() !== '') {
        store.setItem(key, area.value)
      }
    }
    area.addEventListener('input', function () {
      if (area.value === '') store.removeItem(key)
      else store.setItem(key, area.value)
    })
    form.addEventListener('submit', function (e) {
      if (e.defaultPrevented) return
      const id = nonce()
      store.setItem(key, area.value)
      store.setItem(sentKey, id)
      let back = form.querySelector('input[name=return_to]')
      const base = back && back.value ? back.value.split('#')[0] : root.location.pathname + root.location.search
      if (back === null) {
        back = document.createElement('input')
        back.type = 'hidden'
        back.name = 'return_to'
        form.appendChild(back)
      }
      back.value = base + '#sent-' + id
    })
  }

  function sendShortcut (area, form) {
    area.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !e.isComposing) {
        e.preventDefault()
        form.requestSubmit()
      }
    })
  }

  function fmt (n) {
    return n.toLocaleString('en')
  }

  function replyComposer (form, area) {
    area.removeAttribute('maxlength')
    const smsMax = Number(area.getAttribute('data-max-length')) || 1600
    // "Send to": the chosen address's channel sets the limit (SMS counts parts; WhatsApp and
    // Messenger count characters) and, for WhatsApp, whether its 24-hour window is open.
    const toField = form.querySelector('[name=to][data-channel], select[data-reply-to]')
    const windowNote = document.getElementById('whatsapp-window')
    const smsInstead = document.getElementById('send-as-sms')
    const channelNote = document.getElementById('reply-channel')
    const imageBox = document.getElementById('reply-image')
    function chosen () {
      const o = toField === null ? null : toField.tagName === 'SELECT' ? toField.selectedOptions[0] : toField
      if (!o) return { channel: 'sms', limit: smsMax, label: 'SMS', window: null, open: true }
      return {
        channel: o.getAttribute('data-channel') || 'sms',
        limit: Number(o.getAttribute('data-limit')) || smsMax,
        label: o.textContent || '',
        window: o.getAttribute('data-window'),
        open: o.getAttribute('data-window-open') !== '0'
      }
    }
    let max = chosen().limit
    function channelChanged () {
      const c = chosen()
      max = c.limit
      if (channelNote && toField && toField.tagName === 'SELECT') {
        channelNote.textContent = c.channel === 'sms' ? 'SMS: parts and encoding below; at most ' + fmt(c.limit) + ' characters.' : c.label + ': at most ' + fmt(c.limit) + ' characters.'
      }
      if (windowNote) {
        windowNote.hidden = c.window === null
        if (c.window !== null && toField.tagName === 'SELECT') windowNote.textContent = c.window
        windowNote.classList.toggle('closed', c.window !== null && !c.open)
      }
      if (smsInstead) smsInstead.hidden = c.window === null || c.open
      // "Attach an image (MMS)" only where an MMS can go (a US or Canadian phone number); the
      // hidden field is disabled so that it is not posted with a reply to another address.
      if (imageBox && toField) {
        const mms = (toField.tagName === 'SELECT' ? toField.selectedOptions[0] : toField).getAttribute('data-mms') === '1'
        imageBox.hidden = !mms
        imageBox.querySelector('input').disabled = !mms
      }
      const label = form.querySelector('label[for=reply-body]')
      const o = toField && toField.tagName === 'SELECT' ? toField.selectedOptions[0] : null
      if (label && o) label.textContent = 'Reply by ' + o.getAttribute('data-channel-label') + ' to ' + o.getAttribute('data-address')
      update()
    }
    const askAbove = Number(area.getAttribute('data-max-parts-without-confirm')) || 3
    const counter = document.getElementById(area.getAttribute('data-sms-counter')) || null
    const warning = document.createElement('p')
    warning.id = 'reply-limit-warning'
    warning.className = 'limit-warning'
    warning.setAttribute('role', 'alert')
    warning.hidden = true
    ;(counter || area).insertAdjacentElement('afterend', warning)
    describedBy(area, warning.id)
    if (counter) {
      counter.setAttribute('aria-live', 'off')
      describedBy(area, counter.id)
    }
    let confirmBox = null
    let confirmedParts = 0

    function over () {
      return area.value.length > max
    }
    function update () {
      const p = smsParts(area.value)
      const c = chosen()
      if (counter && c.channel !== 'sms') {
        counter.textContent = area.value.length === 0 ? '' : fmt(area.value.length) + ' / ' + fmt(max) + ' characters'
        counter.classList.remove('many')
      } else if (counter) {
        counter.textContent = p.units === 0
          ? ''
          : fmt(area.value.length) + ' / ' + fmt(max) + ' characters · ' + p.parts + ' SMS ' + (p.parts === 1 ? 'part' : 'parts') + ' · ' + p.encoding +
            (p.parts > askAbove ? ' · asks before sending more than ' + askAbove : '')
        counter.classList.toggle('many', p.parts > askAbove)
      }
      const tooLong = over()
      area.setAttribute('aria-invalid', tooLong ? 'true' : 'false')
      form.classList.toggle('over-limit', tooLong)
      if (tooLong) {
        const text = 'Too long: ' + fmt(area.value.length) + ' characters, ' + fmt(area.value.length - max) + ' over the limit of ' + fmt(max) + '. Shorten it before sending; nothing is cut.'
        if (warning.textContent !== text) warning.textContent = text
        warning.hidden = false
      } else if (!warning.hidden) {
        warning.hidden = true
        warning.textContent = ''
      }
      if (confirmBox !== null && p.parts !== confirmedParts) closeConfirm()
    }
    function closeConfirm () {
      if (confirmBox !== null) { confirmBox.remove(); confirmBox = null }
    }
    function askToConfirm (parts) {
      closeConfirm()
      confirmedParts = parts
      confirmBox = document.createElement('div')
      confirmBox.className = 'confirm-parts'
      confirmBox.setAttribute('role', 'group')
      confirmBox.setAttribute('aria-labelledby', 'confirm-parts-text')
      const text = document.createElement('p')
      text.id = 'confirm-parts-text'
      text.textContent = 'This reply is ' + parts + ' SMS parts: the customer receives it as one message, and it is billed as ' + parts + '. Send it?'
      const yes = document.createElement('button')
      yes.type = 'submit'
      yes.name = 'confirm_parts'
      yes.value = '1'
      yes.textContent = 'Send ' + parts + ' parts'
      const no = document.createElement('button')
      no.type = 'button'
      no.className = 'secondary'
      no.textContent = 'Keep editing'
      no.addEventListener('click', function () { closeConfirm(); area.focus() })
      confirmBox.append(text, yes, no)
      const anchor = form.querySelector('.composer-actions') || form.querySelector('button[type=submit]')
      if (anchor) anchor.insertAdjacentElement('beforebegin', confirmBox)
      else form.appendChild(confirmBox)
      yes.focus()
    }

    area.addEventListener('input', update)
    form.addEventListener('submit', function (e) {
      if (over()) {
        e.preventDefault()
        update()
        area.focus()
        return
      }
      const parts = smsParts(area.value).parts
      const submitter = e.submitter || null
      if (chosen().channel !== 'sms' && !(submitter && submitter.name === 'send_as_sms')) return
      // With an image it goes as one MMS: no SMS parts to confirm.
      if (imageBox && !imageBox.hidden && imageBox.querySelector('input').value.trim() !== '') return
      const confirmed = (submitter && submitter.name === 'confirm_parts') || form.querySelector('input[name=confirm_parts][value="1"]') !== null
      if (parts > askAbove && !confirmed) {
        e.preventDefault()
        askToConfirm(parts)
        // "Send later" posts elsewhere: confirming its parts must schedule, not send now.
        if (submitter && submitter.hasAttribute('formaction') && confirmBox !== null) {
          confirmBox.querySelector('button[type=submit]').setAttribute('formaction', submitter.getAttribute('formaction'))
        }
      }
    })
    if (toField && toField.tagName === 'SELECT') toField.addEventListener('change', channelChanged)
    sendShortcut(area, form)
    update()
  }

  // "Send later": the time the agent types is read in the zone the list names. The server offers
  // the customer's zone and UTC; the agent's own (the browser's) is added here and chosen first.
  function browserZone () {
    const select = document.querySelector('select[data-browser-zone]')
    let zone = ''
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || '' } catch (e) { zone = '' }
    if (select === null || zone === '') return
    const option = document.createElement('option')
    option.value = zone
    option.textContent = 'my time (' + zone + ')'
    option.selected = true
    select.insertBefore(option, select.firstChild)
  }

  function noteComposer (form, area) {
    area.removeAttribute('maxlength')
    if (!area.getAttribute('placeholder')) area.setAttribute('placeholder', 'Private note: only agents see it; never sent to the customer')
    sendShortcut(area, form)
  }

  // ---------------------------------------------------------------------------------------------
  // Canned replies in the composer: type `/name`, then Tab or Enter (Up and Down choose among
  // several), or pick one in "Canned reply" and press Insert. The server renders each reply
  // already filled in for this ticket and agent (option[data-text] of form.canned-pick), so the
  // script only inserts text; without the script, Insert asks the server for the filled composer.

  function cannedReplies (area) {
    const picker = document.querySelector('form.canned-pick')
    const select = picker ? picker.querySelector('select[name=canned]') : null
    if (picker === null || select === null) return
    const replies = Array.from(select.options).map(function (o) { return { name: o.value, text: o.getAttribute('data-text') || '' } })
    if (replies.length === 0) return

    // Where the agent's caret was when they left the textarea for the picker; the end when never in it.
    let caret = null
    area.addEventListener('blur', function () { caret = { start: area.selectionStart, end: area.selectionEnd } })

    function insert (text, from, to) {
      area.focus()
      area.setRangeText(text, from, to, 'end')
      area.dispatchEvent(new Event('input', { bubbles: true }))
    }

    picker.addEventListener('submit', function (e) {
      e.preventDefault()
      const reply = replies[select.selectedIndex]
      if (!reply) return
      const at = caret || { start: area.value.length, end: area.value.length }
      insert(reply.text, at.start, at.end)
      announce('Inserted /' + reply.name + '.')
    })

    const hint = document.createElement('p')
    hint.id = 'canned-hint'
    hint.className = 'visually-hidden'
    hint.textContent = 'Type a slash and a canned reply\'s name, then Tab or Enter to insert it.'
    area.insertAdjacentElement('afterend', hint)
    describedBy(area, hint.id)

    const list = document.createElement('ul')
    list.id = 'canned-suggestions'
    list.className = 'canned-suggestions'
    list.setAttribute('role', 'listbox')
    list.setAttribute('aria-label', 'Canned replies')
    list.hidden = true
    area.insertAdjacentElement('afterend', list)
    area.setAttribute('aria-autocomplete', 'list')
    area.setAttribute('aria-controls', list.id)

    let matches = []
    let active = 0
    let token = null
    let spoken = ''

    /** The `/word` that ends at the caret, when it starts the text or follows a space. */
    function tokenAtCaret () {
      if (area.selectionStart !== area.selectionEnd) return null
      const before = area.value.slice(0, area.selectionStart)
      const m = /(^|\s)\/([a-z0-9_-]*)$/.exec(before)
      if (m === null) return null
      return { from: before.length - m[2].length - 1, to: before.length, query: m[2] }
    }

    function close () {
      if (list.hidden) return
      list.hidden = true
      list.textContent = ''
      matches = []
      spoken = ''
      area.removeAttribute('aria-activedescendant')
    }

    function render () {
      list.textContent = ''
      matches.forEach(function (reply, i) {
        const li = document.createElement('li')
        li.id = 'canned-option-' + i
        li.setAttribute('role', 'option')
        li.setAttribute('aria-selected', i === active ? 'true' : 'false')
        const name = document.createElement('strong')
        name.textContent = '/' + reply.name
        const preview = document.createElement('span')
        preview.className = 'muted'
        preview.textContent = ' ' + excerpt(reply.text)
        li.append(name, preview)
        // The textarea keeps the focus (and the caret) while the mouse picks.
        li.addEventListener('mousedown', function (e) { e.preventDefault() })
        li.addEventListener('click', function () { accept(i) })
        list.appendChild(li)
      })
      list.hidden = false
      area.setAttribute('aria-activedescendant', 'canned-option-' + active)
      const words = matches.length === 1
        ? '/' + matches[0].name + ': Tab or Enter inserts it.'
        : matches.length + ' canned replies match. Up and Down choose, Tab or Enter inserts.'
      if (words !== spoken) { spoken = words; announce(words) }
    }

    function update () {
      token = tokenAtCaret()
      const found = token === null ? [] : replies.filter(function (r) { return r.name.indexOf(token.query) === 0 })
      if (found.length === 0) { close(); return }
      const same = found.length === matches.length && found.every(function (r, i) { return r === matches[i] })
      if (!same) active = 0
      matches = found
      render()
    }

    function accept (i) {
      const reply = matches[i]
      const at = token
      close()
      if (!reply || at === null) return
      insert(reply.text, at.from, at.to)
      announce('Inserted /' + reply.name + '.')
    }

    area.addEventListener('input', update)
    area.addEventListener('click', update)
    area.addEventListener('keyup', function (e) {
      if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].indexOf(e.key) >= 0) update()
    })
    area.addEventListener('blur', close)
    area.addEventListener('keydown', function (e) {
      if (list.hidden || e.isComposing || e.altKey || e.ctrlKey || e.metaKey) return
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault()
        active = (active + (e.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length
        render()
      } else if ((e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey) {
        e.preventDefault()
        accept(active)
      } else if (e.key === 'Escape') {
        e.preventDefault()
        close()
      }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // The GSM-7 fix: curly quotes, long dashes, non-breaking spaces, … make a reply UCS-2 (70
  // characters a part instead of 160). A button replaces them with their plain twins. The list
  // is /assets/gsm-lookalikes.js, written by the server from the module its own fix uses.

  function lookalikeFix (area) {
    const map = root.TextdeskLookalikes
    if (!map || typeof map !== 'object') return
    const has = function (ch) { return Object.prototype.hasOwnProperty.call(map, ch) }
    const box = document.createElement('p')
    box.id = 'reply-gsm-fix'
    box.className = 'gsm-fix-offer'
    box.hidden = true
    const words = document.createElement('span')
    words.id = 'reply-gsm-fix-text'
    const button = document.createElement('button')
    button.type = 'button'
    button.className = 'secondary'
    button.textContent = 'Replace look-alike characters'
    button.setAttribute('aria-describedby', words.id)
    box.append(words, ' ', button)
    const counter = document.getElementById(area.getAttribute('data-sms-counter') || '')
    ;(counter || area).insertAdjacentElement('afterend', box)

    function fixed (text) {
      let out = ''
      for (const ch of text) out += has(ch) ? map[ch] : ch
      return out
    }
    /** The look-alikes of `text` as an agent can read them: the visible ones, then "special spaces", "invisible characters". */
    function found (text) {
      const chars = []
      const kinds = []
      for (const ch of text) {
        if (!has(ch)) continue
        const kind = /\s/.test(ch) ? 'special spaces' : map[ch] === '' ? 'invisible characters' : null
        if (kind === null) { if (chars.indexOf(ch) < 0) chars.push(ch) } else if (kinds.indexOf(kind) < 0) kinds.push(kind)
      }
      const all = chars.length ? [chars.join(' ')].concat(kinds) : kinds
      return all.length <= 1 ? all.join('') : all.slice(0, -1).join(', ') + ' and ' + all[all.length - 1]
    }
    function update () {
      const text = area.value
      const after = fixed(text)
      if (after === text) { box.hidden = true; return }
      const now = smsParts(text)
      const then = smsParts(after)
      words.textContent = then.encoding === 'GSM-7'
        ? 'Look-alike characters (' + found(text) + ') make this reply UCS-2: ' + now.parts + ' SMS ' + (now.parts === 1 ? 'part' : 'parts') + ', ' + then.parts + ' in GSM-7 without them.'
        : 'Look-alike characters (' + found(text) + ') can be replaced; other characters keep this reply UCS-2.'
      box.hidden = false
    }
    button.addEventListener('click', function () {
      area.value = fixed(area.value)
      area.focus()
      area.setSelectionRange(area.value.length, area.value.length)
      area.dispatchEvent(new Event('input', { bubbles: true }))
      announce('Look-alike characters replaced: the reply is ' + smsParts(area.value).encoding + '.')
    })
    area.addEventListener('input', update)
    update()
  }

  // ---------------------------------------------------------------------------------------------
  // Keyboard shortcuts (never while typing in a field) and their help dialog.

  const SHORTCUTS = [
    ['j', 'Next ticket in the list'],
    ['k', 'Previous ticket in the list'],
    ['Enter', 'Open the selected ticket'],
    ['r', 'Write a reply to the customer'],
    ['n', 'Write a private note'],
    ['a', 'Assign the ticket to me'],
    ['/', 'Search'],
    ['?', 'Show these shortcuts'],
    ['Esc', 'Close this help'],
    ['Ctrl+Enter', 'Send the reply or note you are writing (⌘+Enter on a Mac)']
  ]

  function typingIn (el) {
    if (!el || el === body) return false
    if (el.isContentEditable) return true
    const tag = el.tagName
    if (tag === 'TEXTAREA' || tag === 'SELECT') return true
    if (tag !== 'INPUT') return false
    return ['button', 'submit', 'reset', 'checkbox', 'radio', 'file', 'image', 'range', 'color'].indexOf((el.type || '').toLowerCase()) < 0
  }

  let help = null
  let helpOpener = null
  function helpDialog () {
    if (help !== null) return help
    help = document.createElement('dialog')
    help.id = 'shortcut-help'
    help.setAttribute('aria-labelledby', 'shortcut-help-title')
    const h = document.createElement('h2')
    h.id = 'shortcut-help-title'
    h.textContent = 'Keyboard shortcuts'
    const p = document.createElement('p')
    p.className = 'muted'
    p.textContent = 'They work anywhere on the page except while you type in a field.'
    const table = document.createElement('table')
    table.className = 'shortcuts'
    const tbody = document.createElement('tbody')
    SHORTCUTS.forEach(function (s) {
      const tr = document.createElement('tr')
      const th = document.createElement('th')
      th.scope = 'row'
      s[0].split('+').forEach(function (k, i) {
        if (i > 0) th.append('+')
        const kbd = document.createElement('kbd')
        kbd.textContent = k
        th.appendChild(kbd)
      })
      const td = document.createElement('td')
      td.textContent = s[1]
      tr.append(th, td)
      tbody.appendChild(tr)
    })
    table.appendChild(tbody)
    const close = document.createElement('button')
    close.type = 'button'
    close.className = 'secondary'
    close.textContent = 'Close'
    close.addEventListener('click', function () { help.close() })
    help.append(h, p, table, close)
    help.addEventListener('close', function () {
      if (helpOpener && document.contains(helpOpener)) helpOpener.focus()
      helpOpener = null
    })
    // showModal() makes the rest of the page inert; Tab still cycles out to the browser's own
    // controls, so keep it inside the dialog.
    help.addEventListener('keydown', function (e) {
      if (e.key !== 'Tab') return
      const focusable = Array.from(help.querySelectorAll('button, [href], [tabindex]:not([tabindex="-1"])'))
      if (focusable.length === 0) return
      const first = focusable[0]
      const last = focusable[focusable.length - 1]
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus() } else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus() }
    })
    body.appendChild(help)
    return help
  }

  function showHelp () {
    const dialog = helpDialog()
    if (dialog.open) return
    helpOpener = document.activeElement
    dialog.showModal()
    dialog.querySelector('button').focus()
  }

  function rows () {
    // At 390 px a ticket page hides the list: nothing to move through then.
    return Array.from(document.querySelectorAll('#ticket-list .ticket-row')).filter(function (r) { return r.getClientRects().length > 0 })
  }

  function selectedRow () {
    const list = rows()
    const active = document.activeElement
    return list.find(function (r) { return r.contains(active) }) ||
      list.find(function (r) { return r.classList.contains('selected') }) ||
      list.find(function (r) { return r.getAttribute('data-ticket-id') === ticketId }) || null
  }

  function select (row) {
    rows().forEach(function (r) { r.classList.toggle('selected', r === row) })
    const link = row.querySelector('a[href^="/tickets/"]')
    if (link) link.focus()
    row.scrollIntoView({ block: 'nearest' })
  }

  function move (step) {
    const list = rows()
    if (list.length === 0) return
    const current = selectedRow()
    const i = current === null ? (step > 0 ? -1 : list.length) : list.indexOf(current)
    select(list[Math.max(0, Math.min(list.length - 1, i + step))])
  }

  function assignToMe () {
    const row = selectedRow()
    const id = (row && !body.classList.contains('page-ticket') ? row.getAttribute('data-ticket-id') : ticketId) || (row ? row.getAttribute('data-ticket-id') : '')
    if (!id) { announce('Pick a ticket first: j and k move through the list.'); return }
    // On the ticket page its own forms come back to the ticket; the list row's come back to the list.
    const onTicket = body.classList.contains('page-ticket') && id === ticketId
    const scope = onTicket
      ? (document.querySelector('.pane-conversation') || document)
      : (row && row.getAttribute('data-ticket-id') === id && row.querySelector('form[action$="/assign"]')) ? row : document
    const forms = Array.from(scope.querySelectorAll('form[action="/tickets/' + id + '/assign"]'))
    for (const form of forms) {
      const button = form.querySelector('button[name=assignee][value=me]')
      if (button) { form.requestSubmit(button); return }
      const hidden = form.querySelector('input[name=assignee][value=me]')
      if (hidden) { form.requestSubmit(); return }
      const choice = form.querySelector('select[name=assignee]')
      if (choice && choice.querySelector('option[value=me]')) { choice.value = 'me'; form.requestSubmit(); return }
    }
    announce('This ticket cannot be assigned from here.')
  }

  function focusField (id) {
    const el = document.getElementById(id)
    if (el === null) return false
    el.focus()
    el.scrollIntoView({ block: 'nearest' })
    return true
  }

  function onKey (e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return
    if (help !== null && help.open) return
    if (typingIn(e.target)) return
    switch (e.key) {
      case 'j': move(1); break
      case 'k': move(-1); break
      case 'Enter': {
        const tag = e.target && e.target.tagName
        if (tag === 'A' || tag === 'BUTTON' || tag === 'SUMMARY') return
        const row = rows().find(function (r) { return r.classList.contains('selected') })
        const link = row && row.querySelector('a[href^="/tickets/"]')
        if (!link) return
        link.click()
        break
      }
      case 'r': if (!focusField('reply-body')) return; break
      case 'n': if (!focusField('note-body')) return; break
      case 'a': assignToMe(); break
      case '/': {
        if (!focusField('search')) return
        const box = document.getElementById('search')
        if (box && typeof box.select === 'function') box.select()
        break
      }
      case '?': showHelp(); break
      default: return
    }
    e.preventDefault()
  }

  function helpButton () {
    const nav = document.querySelector('header.top nav')
    if (nav === null || !me) return
    const b = document.createElement('button')
    b.type = 'button'
    b.className = 'link shortcuts-button'
    b.setAttribute('aria-keyshortcuts', 'Shift+?')
    b.textContent = 'Shortcuts (?)'
    b.addEventListener('click', showHelp)
    nav.appendChild(b)
  }

  // ---------------------------------------------------------------------------------------------
  // The simulator's phone: Enter sends, Shift+Enter is a new line, the newest message in view.

  function phone () {
    document.querySelectorAll('textarea[data-enter-sends]').forEach(function (area) {
      area.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey && !e.isComposing) {
          e.preventDefault()
          if (area.value.trim() !== '') area.form.requestSubmit()
        }
      })
    })
    const screen = document.getElementById('phone-messages')
    if (screen !== null) {
      screen.setAttribute('data-stick-bottom', '')
      screen.scrollTop = screen.scrollHeight
    }
  }

  // ---------------------------------------------------------------------------------------------

  function boot () {
    announcer = document.createElement('div')
    announcer.id = 'announcer'
    announcer.className = 'visually-hidden'
    announcer.setAttribute('aria-live', 'polite')
    announcer.setAttribute('aria-atomic', 'true')
    body.appendChild(announcer)

    localTimes(document)
    markCurrentRow()
    phone()
    document.querySelectorAll('[data-live-fragment]').forEach(liveFragment)

    const replyForm = document.querySelector('form.reply')
    const replyArea = document.getElementById('reply-body')
    if (replyForm && replyArea) {
      drafts(replyForm, replyArea, 'reply')
      replyComposer(replyForm, replyArea)
      cannedReplies(replyArea)
      lookalikeFix(replyArea)
      browserZone()
    }
    // "New message": the same counter, limit warning and parts confirmation as the reply.
    const conversationForm = document.querySelector('form.new-conversation')
    const conversationArea = document.getElementById('conversation-body')
    if (conversationForm && conversationArea) replyComposer(conversationForm, conversationArea)
    const noteForm = document.querySelector('form.note')
    const noteArea = document.getElementById('note-body')
    if (noteForm && noteArea) {
      drafts(noteForm, noteArea, 'note')
      noteComposer(noteForm, noteArea)
    }

    document.addEventListener('keydown', onKey)
    helpButton()
    startPresence()

    const live = me && (document.getElementById('ticket-list') || document.getElementById('timeline') || document.querySelector('.view-counts') || fragmentRefreshers.length > 0)
    if (live) {
      startStream(function (event) {
        refreshList()
        refreshCounts()
        if (ticketId && String(event.ticketId) === ticketId) refreshTimeline()
        fragmentRefreshers.forEach(function (refresh) { refresh() })
      })
      refreshCounts()
    }

    document.querySelectorAll('[data-autofocus]').forEach(function (el) { el.focus() })
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot)
  else boot()
})(typeof window !== 'undefined' ? window : globalThis)
