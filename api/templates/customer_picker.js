// The customer picker of the staff pages: pick one of the suggestions, or search the customer
// files (GET /customers/suggest, sent with the page's cookie) and pick from the results.
// The form sends only the chosen customer_id; the server checks everything again.
(function () {
  const form = document.getElementById('pick-form');
  if (!form) return;
  const input = document.getElementById('search');
  const searchBtn = document.getElementById('search-btn');
  const results = document.getElementById('results');
  const msg = document.getElementById('search-msg');
  const submit = document.getElementById('pick-btn');
  let latest = 0;
  let timer = null;

  function update() {
    submit.disabled = !form.querySelector('input[name=customer_id]:checked');
  }

  function choice(c) {
    const label = document.createElement('label');
    label.className = 'choice';
    const radio = document.createElement('input');
    radio.type = 'radio';
    radio.name = 'customer_id';
    radio.value = String(c.customer_id);
    const text = document.createElement('span');
    const name = document.createElement('b');
    name.textContent = c.legal_name;
    const meta = document.createElement('div');
    meta.className = 'muted';
    let about = '客户编号 ' + c.customer_id;
    if (c.matched_alias && c.matched_alias !== c.legal_name) about += ' · 匹配“' + c.matched_alias + '”';
    if (c.parent) about += ' · 上级：' + c.parent.legal_name;
    meta.textContent = about;
    text.append(name, meta);
    label.append(radio, text);
    return label;
  }

  async function search() {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) {
      msg.textContent = '请输入客户名称';
      return;
    }
    const mine = ++latest;
    msg.textContent = '搜索中…';
    let answer, body;
    try {
      answer = await fetch('/customers/suggest?limit=8&q=' + encodeURIComponent(q),
                           {credentials: 'same-origin', headers: {Accept: 'application/json'}});
    } catch (e) {
      if (mine === latest) msg.textContent = '网络异常，请稍后重试';
      return;
    }
    try {
      body = await answer.json();
    } catch (e) {
      body = null;
    }
    if (mine !== latest) return;  // a newer search has answered, or will
    results.replaceChildren();
    if (answer.status === 401) {
      msg.textContent = '登录已失效，请从推送消息中重新打开此页面';
    } else if (!answer.ok || !body) {
      msg.textContent = (body && body.error && body.error.message) || '搜索失败，请稍后重试';
    } else {
      const found = body.candidates || [];
      msg.textContent = found.length ? '找到 ' + found.length + ' 个客户，请选择：'
                                     : '没有找到相近的客户，请换个写法再试';
      found.forEach(c => results.append(choice(c)));
    }
    update();
  }

  form.addEventListener('change', update);
  searchBtn.addEventListener('click', search);
  // a pinyin (or other) keyboard composing: the letters in the box are not a name yet
  let composing = false;
  input.addEventListener('keydown', e => {
    if (e.key === 'Enter' || e.keyCode === 13) {  // Enter searches; it must not send the form
      if (e.isComposing || composing || e.keyCode === 229) return;  // it confirms the IME's choice
      e.preventDefault();
      search();
    }
  });
  function typed() {
    clearTimeout(timer);
    if (input.value.trim().length >= 2) timer = setTimeout(search, 400);
  }
  input.addEventListener('compositionstart', () => { composing = true; clearTimeout(timer); });
  input.addEventListener('compositionend', () => { composing = false; typed(); });
  input.addEventListener('input', e => {
    if (e.isComposing || composing) return;  // searched once the characters are chosen
    typed();
  });
  form.addEventListener('submit', () => { submit.disabled = true; });  // one tap, one post
  window.addEventListener('pageshow', update);  // back from the result page
  update();
})();
