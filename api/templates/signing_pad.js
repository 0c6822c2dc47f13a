(function(){
  var c=document.getElementById('pad'),x=c.getContext('2d'),drawing=false,strokes=0;
  function pen(d){x.setTransform(d,0,0,d,0,0);x.lineWidth=2.6;x.lineCap='round';x.lineJoin='round';x.strokeStyle='#111';}
  /* phones fire resize when the address bar hides or the screen turns: keep the drawing */
  function fit(){var r=c.getBoundingClientRect(),d=window.devicePixelRatio||1,w=Math.round(r.width*d),h=Math.round(r.height*d);
    if(w===c.width&&h===c.height)return;
    var keep=null;if(strokes>0&&c.width&&c.height){keep=document.createElement('canvas');keep.width=c.width;keep.height=c.height;keep.getContext('2d').drawImage(c,0,0);}
    c.width=w;c.height=h;if(keep){x.drawImage(keep,0,0,w,h);}pen(d);check();}
  function pos(e){var r=c.getBoundingClientRect(),t=e.touches?e.touches[0]:e;return [t.clientX-r.left,t.clientY-r.top];}
  function down(e){e.preventDefault();drawing=true;var p=pos(e);x.beginPath();x.moveTo(p[0],p[1]);}
  function move(e){if(!drawing)return;e.preventDefault();var p=pos(e);x.lineTo(p[0],p[1]);x.stroke();strokes++;check();}
  function up(){drawing=false;}
  c.addEventListener('mousedown',down);c.addEventListener('mousemove',move);window.addEventListener('mouseup',up);
  c.addEventListener('touchstart',down,{passive:false});c.addEventListener('touchmove',move,{passive:false});c.addEventListener('touchend',up);
  var consent=document.getElementById('consent'),name=document.getElementById('signer_name'),btn=document.getElementById('submit-btn'),err=document.getElementById('err');
  function check(){btn.disabled=!(consent.checked&&strokes>5&&name.value.trim().length>=2);}
  consent.addEventListener('change',check);name.addEventListener('input',check);
  document.getElementById('clear').addEventListener('click',function(e){e.preventDefault();x.clearRect(0,0,c.width,c.height);strokes=0;check();});
  document.getElementById('sign-form').addEventListener('submit',function(e){
    if(btn.disabled){e.preventDefault();err.textContent='请阅读并勾选同意、填写签署人姓名并手写签名';return;}
    document.getElementById('signature').value=c.toDataURL('image/png');btn.disabled=true;btn.textContent='正在提交…';});
  window.addEventListener('resize',fit);fit();
})();
