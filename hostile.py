import sys, io, zipfile, h5py, numpy as np, os, shutil, json, time, traceback
sys.path.insert(0,"/tmp/fuzz68a")
from harness import run
D="/tmp/fuzz68a/h5/"; os.makedirs(D,exist_ok=True)
src="/tmp/fuzz68a/fx/gru_adam.keras"
z=zipfile.ZipFile(src); mem={n:z.read(n) for n in z.namelist()}
W="layers/gru/cell/vars/0"
# other file for external links/vds
with h5py.File(D+"other.h5","w") as o: o["d"]=np.ones((3,12),"f4"); o["g/x"]=np.ones(2)
def mk(name, fn, target=W):
    b=io.BytesIO(mem["model.weights.h5"]); b2=io.BytesIO(b.getvalue())
    p=D+name+".weights.h5"
    open(p,"wb").write(b2.getvalue())
    with h5py.File(p,"r+") as f: fn(f)
    out=D+name+".keras"
    with zipfile.ZipFile(out,"w") as zo:
        for n,bb in mem.items(): zo.writestr(n, open(p,"rb").read() if n=="model.weights.h5" else bb)
    return out
def repl(f, path, **kw):
    del f[path]; f.create_dataset(path, **kw)
cases={}
cases["extlink_passwd"]=lambda f:(f.__delitem__(W), f.__setitem__(W,h5py.ExternalLink("/etc/passwd","/x")))
cases["extlink_other"]=lambda f:(f.__delitem__(W), f.__setitem__(W,h5py.ExternalLink(D+"other.h5","/d")))
cases["extlink_group"]=lambda f:f.__setitem__("layers/gru/evil",h5py.ExternalLink(D+"other.h5","/g"))
cases["softlink_ok"]=lambda f:(f.__setitem__("stash",np.array(f[W])), f.__delitem__(W), f.__setitem__(W,h5py.SoftLink("/stash")))
cases["softlink_dangling"]=lambda f:(f.__delitem__(W), f.__setitem__(W,h5py.SoftLink("/nowhere")))
cases["softlink_self"]=lambda f:(f.__delitem__(W), f.__setitem__(W,h5py.SoftLink("/"+W)))
cases["softlink_cycle_group"]=lambda f:f.__setitem__("layers/gru/cell/loop",h5py.SoftLink("/layers"))
cases["hardlink_cycle"]=lambda f:f.__setitem__("layers/gru/cell/loop",f["/layers"])
cases["hardlink_root_cycle"]=lambda f:f.__setitem__("layers/back",f["/"])
cases["hardlink_shared_ds"]=lambda f:(f.__delitem__("layers/gru/cell/vars/1"), f.__setitem__("layers/gru/cell/vars/1",f["layers/dense/vars/0"]))
cases["external_storage_passwd"]=lambda f:repl(f,W,shape=(3,12),dtype="f4",external=[("/etc/passwd",0,144)])
cases["vds"]=lambda f:(f.__delitem__(W), f.create_virtual_dataset(W, h5py.VirtualLayout((3,12),"f4").__setitem__(slice(None),h5py.VirtualSource(D+"other.h5","d",(3,12))) or None) if False else _vds(f))
def _vds(f):
    del f[W]; L=h5py.VirtualLayout((3,12),"f4"); L[:]=h5py.VirtualSource(D+"other.h5","d",(3,12)); f.create_virtual_dataset(W,L)
cases["vds"]=_vds
cases["huge_chunked"]=lambda f:repl(f,W,shape=(10**6,10**6),dtype="f4",chunks=(1,12),compression="gzip")
cases["bomb_chunk"]=lambda f:repl(f,W,data=np.zeros((3,12),"f4"),chunks=(3,12),compression="gzip",compression_opts=9)
cases["lzf"]=lambda f:repl(f,W,data=np.zeros((3,12),"f4"),chunks=(3,12),compression="lzf")
cases["scaleoffset"]=lambda f:repl(f,W,data=np.zeros((3,12),"f4"),chunks=(3,12),scaleoffset=4)
cases["fletcher"]=lambda f:repl(f,W,data=np.zeros((3,12),"f4"),chunks=(3,12),fletcher32=True)
cases["nbit_shuffle"]=lambda f:repl(f,W,data=np.zeros((3,12),"f4"),chunks=(3,12),shuffle=True)
cases["vlen_str"]=lambda f:repl(f,W,shape=(3,12),dtype=h5py.string_dtype())
cases["vlen_float"]=lambda f:repl(f,W,shape=(3,12),dtype=h5py.vlen_dtype("f4"))
cases["compound"]=lambda f:repl(f,W,data=np.zeros((3,12),dtype=[("a","f4"),("b","f4")]))
cases["compound1"]=lambda f:repl(f,W,data=np.zeros((3,12),dtype=[("a","f4")]))
cases["enum"]=lambda f:repl(f,W,shape=(3,12),dtype=h5py.enum_dtype({"a":0,"b":1},basetype="i1"))
cases["objref"]=lambda f:repl(f,W,shape=(3,12),dtype=h5py.ref_dtype)
cases["regref"]=lambda f:repl(f,W,shape=(3,12),dtype=h5py.regionref_dtype)
cases["fixed_str"]=lambda f:repl(f,W,data=np.full((3,12),b"1.0",dtype="S4"))
cases["bool"]=lambda f:repl(f,W,data=np.zeros((3,12),bool))
cases["array_dtype"]=lambda f:repl(f,W,shape=(3,),dtype=np.dtype(("f4",(12,))))
cases["opaque"]=lambda f:repl(f,W,data=np.zeros((3,12),dtype="V4"))
cases["f128"]=lambda f:repl(f,W,data=np.zeros((3,12),dtype="f16") if hasattr(np,"float128") else np.zeros((3,12)))
cases["bigendian"]=lambda f:repl(f,W,data=np.ones((3,12),dtype=">f4"))
cases["int64huge"]=lambda f:repl(f,W,data=np.full((3,12),2**62,dtype="i8"))
cases["uint64"]=lambda f:repl(f,W,data=np.full((3,12),2**63,dtype="u8"))
cases["empty_null"]=lambda f:(f.__delitem__(W), f.__setitem__(W,h5py.Empty("f4")))
cases["scalar"]=lambda f:(f.__delitem__(W), f.__setitem__(W,np.float32(1)))
cases["maxshape_unlim"]=lambda f:repl(f,W,data=np.ones((3,12),"f4"),maxshape=(None,None),chunks=(1,1))
cases["many_chunks"]=lambda f:repl(f,W,data=np.ones((3,12),"f4"),chunks=(1,1))
cases["w_is_group"]=lambda f:(f.__delitem__(W), f.create_group(W))
cases["extra_vars"]=lambda f:[f.create_dataset("layers/gru/cell/vars/%d"%i,data=np.ones(3,"f4")) for i in range(3,50)]
cases["many_groups"]=lambda f:[f.create_group("layers/junk%d"%i) for i in range(20000)]
def deep(f):
    g=f["layers"]
    for i in range(300): g=g.create_group("d")
cases["deep_groups"]=deep
cases["attr_huge"]=lambda f:f["layers"].attrs.create("x",shape=(10**7,),dtype="f8")
cases["attr_vlen_seq"]=lambda f:f["layers"].attrs.create("x",data=[np.ones(3)],dtype=h5py.vlen_dtype("f8")) if False else f["layers"].attrs.create("x",shape=(1,),dtype=h5py.vlen_dtype("f8"))
cases["attr_ref"]=lambda f:f.attrs.create("x",data=f["layers"].ref,dtype=h5py.ref_dtype)
cases["opt_extra_var"]=lambda f:f.create_dataset("optimizer/vars/12",data=np.ones((4,12),"f4"))
cases["opt_missing_var"]=lambda f:f.__delitem__("optimizer/vars/11")
cases["opt_wrong_shape"]=lambda f:repl(f,"optimizer/vars/2",data=np.ones((5,7),"f4"))
cases["opt_iter_str"]=lambda f:repl(f,"optimizer/vars/0",data=np.array(b"abc"))
cases["opt_iter_float"]=lambda f:repl(f,"optimizer/vars/0",data=np.array(1.5))
cases["opt_iter_nan"]=lambda f:repl(f,"optimizer/vars/1",data=np.array(np.nan,"f4"))
cases["opt_extlink"]=lambda f:(f.__delitem__("optimizer/vars/2"),f.__setitem__("optimizer/vars/2",h5py.ExternalLink(D+"other.h5","/d")))
cases["opt_huge"]=lambda f:repl(f,"optimizer/vars/2",shape=(10**5,10**5),dtype="f4",chunks=(1,100))
cases["opt_vars_dataset"]=lambda f:(f.__delitem__("optimizer/vars"),f.create_dataset("optimizer/vars",data=np.ones(3)))
cases["opt_many_vars"]=lambda f:[f.create_dataset("optimizer/vars/%d"%i,data=np.ones((4,12),"f4")) for i in range(12,2000)]
cases["wrong_shape"]=lambda f:repl(f,W,data=np.ones((12,3),"f4"))
cases["wrong_shape_more"]=lambda f:repl(f,W,data=np.ones((3,12,1),"f4"))
cases["nan_name_vars"]=lambda f:(f.__setitem__("layers/gru/cell/vars/x",np.ones(3,"f4")))
sel=sys.argv[1:] or list(cases)
for k in sel:
    try: p=mk(k,cases[k])
    except Exception as e: print(k,"BUILD FAIL",type(e).__name__,e); continue
    r=run(p,"loadc"); print(k, r, flush=True)
    if os.path.exists("/tmp/fuzz68a/SENTINEL"): print("SENTINEL!!!")
