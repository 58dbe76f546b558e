// Textdesk inbox: in-place refresh of lists and conversations, local times, SMS length hints.
// Loaded as an external file so the Content-Security-Policy can forbid inline script.
(function () {
  'use strict'

  function localTimes (root) {
    root.querySelectorAll('time[datetime]').forEach(function (el) {
      const d = new Date(el.getAttribute('datetime'))
      if (!isNaN(d.getTime())) {
        el.title = el.getAttribute('datetime')
        el.textContent = d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })
      }
    })
  }

  function refresher (el) {
    const url = el.getAttribute('data-refresh')
    const seconds = Number(el.getAttribute('data-refresh-seconds')) || 5
    let busy = false
    setInterval(function () {
      if (busy || document.hidden) return
      busy = true
      fetch(url, { headers: { accept: 'text/html' }, credentials: 'same-origin' })
        .then(function (res) {
          if (res.status === 401 || res.redirected) { window.location.reload(); return null }
          return res.ok ? res.text() : null
        })
        .then(function (html) {
          if (html !== null && html !== undefined && html !== el.__last) {
            el.__last = html
            el.innerHTML = html
            localTimes(el)
          }
        })
        .catch(function () {})
        .then(function () { busy = false })
    }, seconds * 1000)
  }

  // GSM 03.38 basic and extension characters; anything else makes the SMS UCS-2 (70 per part).
  const GSM = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà'
  const EXT = '^{}\\[~]|€\f'
  function smsParts (text) {
    let gsm = true
    let units = 0
    for (const ch of text) {
      if (GSM.indexOf(ch) >= 0) units += 1
      else if (EXT.indexOf(ch) >= 0) units += 2
      else { gsm = false; break }
    }
    if (!gsm) units = text.length
    const single = gsm ? 160 : 70
    const multi = gsm ? 153 : 67
    const parts = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi)
    return { units, parts, encoding: gsm ? 'GSM-7' : 'Unicode' }
  }

  function counter (area) {
    const out = document.getElementById(area.getAttribute('data-sms-counter'))
    if (!out) return
    const update = function () {
      const p = smsParts(area.value)
      out.textContent = p.units === 0 ? '' : p.units + ' characters · ' + p.parts + ' SMS · ' + p.encoding
    }
    area.addEventListener('input', update)
    update()
  }

  document.addEventListener('DOMContentLoaded', function () {
    localTimes(document)
    document.querySelectorAll('[data-refresh]').forEach(refresher)
    document.querySelectorAll('textarea[data-sms-counter]').forEach(counter)
    document.querySelectorAll('[data-autofocus]').forEach(function (el) { el.focus() })
  })
})()
