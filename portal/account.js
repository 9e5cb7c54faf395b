// @ts-check
/**
 * Sign up / sign in beside the demo customer chooser. A signed-in user's access token replaces the demo token for
 * every request; it is refreshed (refresh-token rotation) a minute before it expires. Tokens live in memory only:
 * a reload signs out, and nothing is left in storage for a script to read.
 */

const TEXT = {
  es: {
    email: 'Email',
    password: 'Contraseña',
    name: 'Nombre',
    signIn: 'Acceder',
    signUp: 'Registrarse',
    signOut: 'Salir',
    signedIn: 'Conectado como',
    failed: 'Email o contraseña incorrectos',
    taken: 'Ese email no se puede registrar',
    invalid: 'Revisa los datos: contraseña de 8 a 128 caracteres, distinta del email',
    locked: 'Demasiados intentos; prueba más tarde',
  },
  en: {
    email: 'Email',
    password: 'Password',
    name: 'Name',
    signIn: 'Sign in',
    signUp: 'Sign up',
    signOut: 'Sign out',
    signedIn: 'Signed in as',
    failed: 'Wrong email or password',
    taken: 'That email cannot be registered',
    invalid: 'Check the fields: a password of 8 to 128 characters, not the email',
    locked: 'Too many attempts; try again later',
  },
};

/** @typedef {{access_token: string, refresh_token: string, expires_in: number}} Tokens */

const session = {
  /** @type {string | null} */ access: null,
  /** @type {string | null} */ refresh: null,
  /** @type {string | null} */ email: null,
  /** @type {ReturnType<typeof setTimeout> | undefined} */ timer: undefined,
};

/** @param {keyof typeof TEXT.es} key */
function t(key) {
  const lang = document.documentElement.lang === 'en' ? 'en' : 'es';
  return TEXT[lang][key];
}

/** The signed-in user's access token, or null (then the page uses its demo login). */
export function accountToken() {
  return session.access;
}

/**
 * @param {string} path
 * @param {Record<string, string>} form
 * @param {boolean} [json]
 * @returns {Promise<{status: number, body: any}>}
 */
async function post(path, form, json = false) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded' },
    body: json ? JSON.stringify(form) : new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/**
 * Renders the form into `container`; `onChange` runs whenever the user signs in or out.
 * @param {{container: HTMLElement, onChange: () => void}} options
 */
export function mountAccount({ container, onChange }) {
  const box = document.createElement('form');
  box.id = 'account';
  box.className = 'field account';
  box.noValidate = true;
  container.prepend(box);

  /** @param {Tokens} tokens @param {string} email */
  const signedIn = (tokens, email) => {
    session.access = tokens.access_token;
    session.refresh = tokens.refresh_token;
    session.email = email;
    clearTimeout(session.timer);
    // Refresh a minute before expiry (or halfway, for very short tokens).
    const lead = Math.min(60, tokens.expires_in / 2);
    session.timer = setTimeout(() => void refresh(), (tokens.expires_in - lead) * 1000);
  };

  const refresh = async () => {
    if (!session.refresh) return;
    const res = await post('/auth/token', {
      grant_type: 'refresh_token',
      refresh_token: session.refresh,
    }).catch(() => null);
    if (res?.status === 200) signedIn(res.body, session.email ?? '');
    else signOut();
  };

  const signOut = () => {
    clearTimeout(session.timer);
    session.access = session.refresh = session.email = null;
    render();
    onChange();
  };

  /** @param {string} message */
  const say = (message) => {
    const note = box.querySelector('.account-error');
    if (note) note.textContent = message;
  };

  /** @param {'signIn' | 'signUp'} action */
  const submit = async (action) => {
    const data = new FormData(box);
    const email = String(data.get('email') ?? '');
    const password = String(data.get('password') ?? '');
    if (action === 'signUp') {
      const reg = await post(
        '/auth/register',
        { email, password, name: String(data.get('name') || email) },
        true,
      );
      if (reg.status !== 201) return say(reg.status === 409 ? t('taken') : t('invalid'));
    }
    const res = await post('/auth/token', { grant_type: 'password', username: email, password });
    if (res.status !== 200) return say(res.status === 429 ? t('locked') : t('failed'));
    signedIn(res.body, email);
    render();
    onChange();
  };

  const render = () => {
    box.replaceChildren();
    if (session.access) {
      const who = document.createElement('span');
      who.className = 'account-who';
      who.textContent = `${t('signedIn')} ${session.email}`;
      const out = button(t('signOut'), 'sign-out', signOut);
      box.append(who, out);
      return;
    }
    for (const [name, type, label] of /** @type {const} */ ([
      ['email', 'email', 'email'],
      ['password', 'password', 'password'],
      ['name', 'text', 'name'],
    ])) {
      const input = document.createElement('input');
      input.name = name;
      input.type = type;
      input.placeholder = t(label);
      input.setAttribute('aria-label', t(label));
      input.autocomplete = name === 'password' ? 'current-password' : name;
      box.append(input);
    }
    const note = document.createElement('span');
    note.className = 'account-error';
    note.setAttribute('role', 'alert');
    box.append(
      button(t('signIn'), 'sign-in', () => void submit('signIn')),
      button(t('signUp'), 'sign-up', () => void submit('signUp')),
      note,
    );
  };

  box.addEventListener('submit', (e) => {
    e.preventDefault();
    void submit('signIn');
  });
  render();
  return { render };
}

/**
 * @param {string} label
 * @param {string} action
 * @param {() => void} onClick
 */
function button(label, action, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.action = action;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}
