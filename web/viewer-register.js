// Registration on the viewer page (docs/registration.md): the form when the room takes
// registrations and the link has no token, a pending registration polled until the host
// decides, the personal link (?pass=) that fetches a fresh token, and "my invite link".
import { $ } from './common.js';

const POLL_MS = 5000;

// What this browser keeps per room: the personal pass (to fetch a fresh token later) and the
// invite link to share. localStorage: it should outlive the tab, as a saved login would.
function keys(roomId) {
  return { pass: `showfloor.pass.${roomId}`, invite: `showfloor.invite.${roomId}` };
}

const api = (roomId, rest = '') => `/api/rooms/${encodeURIComponent(roomId)}${rest}`;

async function json(response) {
  try { return await response.json(); } catch { return {}; }
}

// Shows the invite link to share, absolute on this page's origin.
export function showInviteLink(roomId) {
  const link = localStorage.getItem(keys(roomId).invite);
  if (!link) return;
  $('#my-invite-link').value = new URL(link, location.origin).href;
  $('#my-invite').hidden = false;
}

function remember(roomId, body) {
  const k = keys(roomId);
  if (body.link) {
    const pass = new URL(body.link, location.origin).searchParams.get('pass');
    if (pass) localStorage.setItem(k.pass, pass);
  }
  if (body.invite_link) localStorage.setItem(k.invite, body.invite_link);
}

// A fresh token with the stored pass, or null (none stored, or no longer valid).
export async function tokenFromPass(roomId) {
  const pass = localStorage.getItem(keys(roomId).pass);
  if (!pass) return null;
  const outcome = await fetchByPass(roomId, pass);
  return outcome.token || null;
}

// GET the registration a pass names: {token} once approved, {pending: poll} while pending,
// {error} otherwise (a pass that no longer works is forgotten).
async function fetchByPass(roomId, pass) {
  const dot = pass.indexOf('.');
  if (dot < 1) return { error: 'This personal link is not complete.' };
  const id = pass.slice(0, dot);
  const secret = pass.slice(dot + 1);
  const path = api(roomId, `/registrations/${encodeURIComponent(id)}?secret=${encodeURIComponent(secret)}`);
  const response = await fetch(path, { cache: 'no-store' });
  const body = await json(response);
  if (response.status === 200 || response.status === 201) {
    remember(roomId, body);
    return { token: body.token };
  }
  if (response.status === 202) return { pending: path };
  if (response.status === 404 || response.status === 403) localStorage.removeItem(keys(roomId).pass);
  return { error: body.message || `The personal link did not work (${response.status}).` };
}

function pollUntilDecided(roomId, path, onToken) {
  $('#register-form').hidden = true;
  $('#register-pending').hidden = false;
  const tick = async () => {
    let response;
    try { response = await fetch(path, { cache: 'no-store' }); } catch { return setTimeout(tick, POLL_MS); }
    const body = await json(response);
    if (response.status === 200 || response.status === 201) {
      remember(roomId, body);
      $('#register').hidden = true;
      return onToken(body.token);
    }
    if (response.status === 202 || response.status === 429 || response.status >= 500) return setTimeout(tick, POLL_MS);
    $('#register-pending').hidden = true;
    $('#register-error').textContent = body.message || `Registration failed (${response.status}).`;
  };
  setTimeout(tick, POLL_MS);
}

// Marks the field the server named, and says why.
function showError(body, status) {
  const form = $('#register-form');
  for (const input of form.querySelectorAll('input')) input.removeAttribute('aria-invalid');
  const field = body.field && form.elements.namedItem(body.field);
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }
  const retry = status === 429 ? ' Please wait a moment and try again.' : '';
  $('#register-error').textContent = (body.message || `Registration failed (${status}).`) + retry;
}

// Offers registration if the room takes it. `invite` and `channel` come from the link.
// Returns true when the form is shown; otherwise false, or why not (the caller shows the
// token form, with that reason).
export async function offerRegistration(roomId, { invite, channel }, onToken) {
  let settings;
  try {
    const response = await fetch(api(roomId, '/registration'), { cache: 'no-store' });
    if (!response.ok) return false;
    settings = await response.json();
  } catch {
    return false;
  }
  if (!settings.accepts_registrations) return false;
  if (settings.registration === 'invite_only' && !invite) {
    return 'This room is by invitation only: open the link you were sent.';
  }
  $('#title').textContent = settings.title || 'Showfloor';
  $('#register').hidden = false;
  $('#join').hidden = true;
  $('#register-title').textContent = `Register for ${settings.title || 'the live room'}`;
  $('#register-note').textContent = settings.registration === 'approval'
    ? 'The organiser confirms each registration.'
    : (settings.phone_country ? `Numbers without + are read as ${settings.phone_country} numbers.` : 'Type your number with + and the country code.');
  $('#register-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    const body = {
      name: data.get('name').trim(),
      company: data.get('company').trim(),
      phone: data.get('phone').trim(),
    };
    if (invite) body.invite = invite;
    if (channel) body.channel = channel;
    $('#register-error').textContent = '';
    const button = e.target.querySelector('button');
    button.disabled = true;
    let response;
    try {
      response = await fetch(api(roomId, '/registrations'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch {
      button.disabled = false;
      $('#register-error').textContent = 'Could not reach the server — check the connection and try again.';
      return;
    }
    button.disabled = false;
    const answer = await json(response);
    if (response.status === 201 || response.status === 200) {
      remember(roomId, answer);
      $('#register').hidden = true;
      onToken(answer.token);
    } else if (response.status === 202) {
      pollUntilDecided(roomId, answer.poll, onToken);
    } else {
      showError(answer, response.status);
    }
  });
  return true;
}

// Takes `pass`, `invite` and `ch` out of the address bar (the pass is a credential); returns
// them.
export function linkParams() {
  const url = new URL(location.href);
  const out = {
    pass: url.searchParams.get('pass'),
    invite: url.searchParams.get('invite'),
    channel: url.searchParams.get('ch'),
  };
  if (out.pass) {
    url.searchParams.delete('pass');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return out;
}

// Opens the room with a personal link's pass: a token, a pending registration, or why not.
export async function openWithPass(roomId, pass, onToken, onError) {
  localStorage.setItem(keys(roomId).pass, pass);
  const outcome = await fetchByPass(roomId, pass);
  if (outcome.token) return onToken(outcome.token);
  if (outcome.pending) {
    $('#register').hidden = false;
    return pollUntilDecided(roomId, outcome.pending, onToken);
  }
  onError(outcome.error);
}

export function wireInviteCopy() {
  $('#my-invite-copy').addEventListener('click', async () => {
    const input = $('#my-invite-link');
    try {
      await navigator.clipboard.writeText(input.value);
      $('#my-invite-copy').textContent = 'Copied';
    } catch {
      input.select();
    }
  });
}
