/**
 * Discussion threads of a dataset: the list (open/resolved, with counts), a new thread on
 * the dataset or one of its images, and one thread with its posts, replies, edits (with
 * their history), resolve and reopen.
 *
 * Posts are shown only as the service's sanitised HTML (`html`), passed once more through
 * JupyterLab's own sanitizer; the Markdown source is only ever put into a text area.
 * An edit that lost a race (412) shows the newer text and keeps what the user typed.
 */
import { Sanitizer } from '@jupyterlab/apputils';
import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  IPost,
  IPostRevision,
  IThread,
  IThreadPage,
  RepositoryClient,
  ThreadStatus
} from './api';
import { notifyError } from './actions';
import { savePostEdit } from './models';
import { RequestError } from './request';
import { IViewLink } from './viewer/link';

const sanitizer = new Sanitizer();

function Html(props: { html: string; className?: string }): JSX.Element {
  return (
    <div
      className={props.className ?? 'nr-PostBody'}
      dangerouslySetInnerHTML={{ __html: sanitizer.sanitize(props.html) }}
    />
  );
}

function when(iso: string): string {
  return iso.replace('T', ' ').slice(0, 16);
}

export interface IThreadsProps {
  client: RepositoryClient;
  accession: string;
  version: number;
  images: string[];
  /** an image to start a new thread on (from the image table's "Discuss") */
  discussImage: string | null;
  canAnnotate: boolean;
  /** the signed-in user: edit buttons only on their own posts (curators moderate) */
  me: string | null;
  /** what the user may do on the dataset (`moderate`: curators; `edit`: the owner) */
  can: string[];
  onCounts: (counts: { [status: string]: number }) => void;
  /** open a thread's image in the viewer, at its region */
  viewImage?: (link: IViewLink) => void;
}

/** The view link of a thread's image: its region with a margin of half its size. */
export function threadLink(thread: IThread): IViewLink {
  const a = thread.anchor as { [key: string]: unknown };
  const link: IViewLink = {
    accession: thread.dataset,
    version: thread.version,
    image: thread.image ?? '',
    x: null,
    y: null,
    z: 0,
    t: 0,
    c: null
  };
  const box = (v: unknown): [number, number] | null => {
    if (Array.isArray(v) && v.length === 2) {
      const [lo, hi] = v as number[];
      const m = (hi - lo) / 2;
      return [Math.max(0, lo - m), hi + m];
    }
    return null;
  };
  if (a['kind'] === 'region') {
    if (a['shape'] === 'box') {
      link.x = box(a['x']);
      link.y = box(a['y']);
    } else if (Array.isArray(a['points']) && a['points'].length) {
      const pts = a['points'] as number[][];
      const xs = pts.map(p => p[0]);
      const ys = pts.map(p => p[1]);
      link.x = box([Math.min(...xs), Math.max(...xs)]);
      link.y = box([Math.min(...ys), Math.max(...ys)]);
    }
  }
  return link;
}

function NewThread(props: {
  client: RepositoryClient;
  accession: string;
  images: string[];
  initialImage: string | null;
  onCreated: (thread: IThread) => void;
  onCancel: () => void;
}): JSX.Element {
  const [title, setTitle] = React.useState('');
  const [body, setBody] = React.useState('');
  const [image, setImage] = React.useState(props.initialImage ?? '');
  const [busy, setBusy] = React.useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      const { data } = await props.client.createThread(
        props.accession,
        title,
        body,
        image || null
      );
      props.onCreated(data);
    } catch (error) {
      notifyError('New thread', error);
    } finally {
      setBusy(false);
    }
  };
  const names =
    props.initialImage && !props.images.includes(props.initialImage)
      ? [props.initialImage, ...props.images]
      : props.images;
  const options = [
    { label: 'the whole dataset', value: '' },
    ...names.map(n => ({ label: `image ${n}`, value: n }))
  ];
  return (
    <form className="nr-NewThread" onSubmit={submit} aria-label="New thread">
      <label>
        Title
        <InputGroup
          value={title}
          onChange={e => setTitle(e.target.value)}
          aria-label="Thread title"
          required
          maxLength={300}
        />
      </label>
      <label>
        About
        <HTMLSelect
          value={image}
          onChange={e => setImage(e.target.value)}
          options={options}
          aria-label="Thread anchor"
        />
      </label>
      <label>
        Message (Markdown)
        <textarea
          className="nr-TextArea"
          value={body}
          onChange={e => setBody(e.target.value)}
          aria-label="Thread message"
          required
          rows={4}
        />
      </label>
      <div className="nr-FormButtons">
        <Button type="submit" disabled={busy || !title.trim() || !body.trim()}>
          Post thread
        </Button>
        <Button type="button" minimal onClick={props.onCancel}>
          Cancel
        </Button>
      </div>
    </form>
  );
}

function PostHistory(props: { revisions: IPostRevision[] }): JSX.Element {
  return (
    <ol className="nr-PostHistory" aria-label="Edit history">
      {props.revisions.map(r => (
        <li key={r.rev}>
          <div className="nr-Meta">
            rev {r.rev} · {r.who} · {when(r.when)}
            {r.reason ? ` · ${r.reason}` : ''}
          </div>
          <pre className="nr-PostSource">{r.body}</pre>
        </li>
      ))}
    </ol>
  );
}

function PostView(props: {
  client: RepositoryClient;
  accession: string;
  threadId: number;
  post: IPost;
  mayEdit: boolean;
  onChanged: () => void;
}): JSX.Element {
  const { client, accession, threadId } = props;
  const [post, setPost] = React.useState(props.post);
  const [editing, setEditing] = React.useState<string | null>(null);
  const [conflict, setConflict] = React.useState<IPost | null>(null);
  const [history, setHistory] = React.useState<IPostRevision[] | null>(null);
  React.useEffect(() => setPost(props.post), [props.post]);
  const save = async () => {
    if (editing === null) {
      return;
    }
    // after a conflict the user chose to keep their text over the newer one
    const base = conflict ?? post;
    try {
      const outcome = await savePostEdit(
        client,
        accession,
        threadId,
        base,
        editing
      );
      if (outcome.kind === 'saved') {
        setPost(outcome.post);
        setEditing(null);
        setConflict(null);
        setHistory(null);
        props.onChanged();
      } else {
        setConflict(outcome.current);
      }
    } catch (error) {
      notifyError('Edit post', error);
    }
  };
  const showHistory = async () => {
    if (history) {
      setHistory(null);
      return;
    }
    try {
      setHistory(await client.postHistory(accession, threadId, post.id));
    } catch (error) {
      notifyError('Post history', error);
    }
  };
  return (
    <li className="nr-Post" data-post={post.id}>
      <div className="nr-Meta">
        <strong>{post.author}</strong> · {when(post.created)}
        {post.edited ? (
          <button
            type="button"
            className="nr-Edited"
            onClick={showHistory}
            title="Show the edit history"
          >
            (edited)
          </button>
        ) : null}
      </div>
      {editing === null ? <Html html={post.html} /> : null}
      {editing !== null ? (
        <div className="nr-EditPost">
          {conflict ? (
            <div className="nr-Conflict" role="alert">
              <p>
                Somebody edited this post meanwhile (
                {conflict.author === post.author ? 'rev' : 'by'} {conflict.rev}
                ). Their text now reads:
              </p>
              <Html
                html={conflict.html}
                className="nr-PostBody nr-Conflict-newer"
              />
              <p>
                Your text is kept below: save it over theirs, or discard it.
              </p>
            </div>
          ) : null}
          <textarea
            className="nr-TextArea"
            aria-label="Edit post"
            value={editing}
            rows={4}
            onChange={e => setEditing(e.target.value)}
          />
          <div className="nr-FormButtons">
            <Button small onClick={save} disabled={!editing.trim()}>
              {conflict ? 'Save mine over it' : 'Save'}
            </Button>
            <Button
              small
              minimal
              onClick={() => {
                if (conflict) {
                  setPost(conflict);
                }
                setEditing(null);
                setConflict(null);
              }}
            >
              {conflict ? 'Discard mine' : 'Cancel'}
            </Button>
          </div>
        </div>
      ) : (
        <div className="nr-PostActions">
          {props.mayEdit ? (
            <Button
              small
              minimal
              onClick={() => setEditing(post.body)}
              aria-label={`Edit post ${post.id}`}
            >
              Edit
            </Button>
          ) : null}
          <Button small minimal onClick={showHistory}>
            History
          </Button>
        </div>
      )}
      {history ? <PostHistory revisions={history} /> : null}
    </li>
  );
}

function ThreadView(props: {
  client: RepositoryClient;
  accession: string;
  threadId: number;
  me: string | null;
  can: string[];
  onBack: () => void;
  onChanged: () => void;
  viewImage?: (link: IViewLink) => void;
}): JSX.Element {
  const { client, accession, threadId, me, can } = props;
  const [thread, setThread] = React.useState<IThread | null>(null);
  const [etag, setEtag] = React.useState<string | null>(null);
  const [reply, setReply] = React.useState('');
  const load = React.useCallback(async () => {
    try {
      const r = await client.thread(accession, threadId);
      setThread(r.data);
      setEtag(r.etag);
    } catch (error) {
      notifyError('Thread', error);
    }
  }, [client, accession, threadId]);
  React.useEffect(() => {
    void load();
  }, [load]);
  if (!thread) {
    return <div className="nr-Loading">Loading thread…</div>;
  }
  const setStatus = async (status: ThreadStatus) => {
    try {
      const r = await client.setThreadStatus(
        accession,
        thread.id,
        status,
        etag ?? ''
      );
      setThread(r.data);
      setEtag(r.etag);
      props.onChanged();
    } catch (error) {
      notifyError(status === 'resolved' ? 'Resolve' : 'Reopen', error);
      if (error instanceof RequestError && error.status === 412) {
        await load();
      }
    }
  };
  const sendReply = async (event: React.FormEvent) => {
    event.preventDefault();
    try {
      await client.reply(accession, thread.id, reply);
      setReply('');
      await load();
      props.onChanged();
    } catch (error) {
      notifyError('Reply', error);
    }
  };
  const changed = () => {
    void load();
    props.onChanged();
  };
  const moderator = can.includes('moderate');
  const mayResolve =
    moderator || can.includes('edit') || thread.created_by === me;
  return (
    <section
      className="nr-Thread"
      aria-label={`Thread ${thread.title}`}
      data-thread={thread.id}
    >
      <div className="nr-ThreadHead">
        <Button
          small
          minimal
          onClick={props.onBack}
          aria-label="Back to the threads"
        >
          ‹ Threads
        </Button>
        <h3>{thread.title}</h3>
        <span className={`nr-Badge nr-Status-${thread.status}`}>
          {thread.status}
        </span>
        {thread.image ? (
          <span className="nr-Badge">image {thread.image}</span>
        ) : null}
        {thread.image && props.viewImage ? (
          <Button
            small
            title="Open the image in the viewer, at this thread's region"
            onClick={() => props.viewImage?.(threadLink(thread))}
          >
            View on image
          </Button>
        ) : null}
        {!mayResolve ? null : thread.status === 'open' ? (
          <Button small onClick={() => void setStatus('resolved')}>
            Resolve
          </Button>
        ) : (
          <Button small onClick={() => void setStatus('open')}>
            Reopen
          </Button>
        )}
      </div>
      <ol className="nr-Posts">
        {(thread.posts ?? []).map(p => (
          <PostView
            key={p.id}
            client={client}
            accession={accession}
            threadId={thread.id}
            post={p}
            mayEdit={moderator || p.author === me}
            onChanged={changed}
          />
        ))}
      </ol>
      <form className="nr-Reply" onSubmit={sendReply} aria-label="Reply">
        <textarea
          className="nr-TextArea"
          aria-label="Reply"
          placeholder="Reply (Markdown)…"
          value={reply}
          rows={3}
          onChange={e => setReply(e.target.value)}
        />
        <Button type="submit" small disabled={!reply.trim()}>
          Reply
        </Button>
      </form>
    </section>
  );
}

/** The threads tab. */
export function Threads(props: IThreadsProps): JSX.Element {
  const { client, accession } = props;
  const [status, setStatus] = React.useState<ThreadStatus | null>(null);
  const [page, setPage] = React.useState<IThreadPage | null>(null);
  const [open, setOpen] = React.useState<number | null>(null);
  const [creating, setCreating] = React.useState(props.discussImage !== null);
  const onCounts = props.onCounts;
  const load = React.useCallback(async () => {
    try {
      const p = await client.threads(accession, { status });
      setPage(p);
      onCounts(p.counts);
    } catch (error) {
      notifyError('Threads', error);
    }
  }, [client, accession, status, onCounts]);
  React.useEffect(() => {
    void load();
  }, [load]);
  React.useEffect(() => {
    if (props.discussImage !== null) {
      setCreating(true);
      setOpen(null);
    }
  }, [props.discussImage]);
  if (open !== null) {
    return (
      <ThreadView
        client={client}
        accession={accession}
        threadId={open}
        me={props.me}
        can={props.can}
        onBack={() => {
          setOpen(null);
          void load();
        }}
        onChanged={() => void load()}
        viewImage={props.viewImage}
      />
    );
  }
  const counts = page?.counts ?? {};
  const total = (counts.open ?? 0) + (counts.resolved ?? 0);
  const filters: Array<[ThreadStatus | null, string]> = [
    [null, `All (${total})`],
    ['open', `Open (${counts.open ?? 0})`],
    ['resolved', `Resolved (${counts.resolved ?? 0})`]
  ];
  return (
    <div className="nr-Threads">
      <div className="nr-ThreadsBar">
        <div role="group" aria-label="Thread status">
          {filters.map(([value, label]) => (
            <button
              type="button"
              key={label}
              className="nr-Toggle"
              aria-pressed={status === value}
              onClick={() => setStatus(value)}
            >
              {label}
            </button>
          ))}
        </div>
        {props.canAnnotate ? (
          <Button small onClick={() => setCreating(true)}>
            New thread
          </Button>
        ) : null}
      </div>
      {creating ? (
        <NewThread
          key={props.discussImage ?? ''}
          client={client}
          accession={accession}
          images={props.images}
          initialImage={props.discussImage}
          onCancel={() => setCreating(false)}
          onCreated={thread => {
            setCreating(false);
            setOpen(thread.id);
            void load();
          }}
        />
      ) : null}
      <ul className="nr-ThreadList" aria-label="Threads">
        {(page?.items ?? []).map(t => (
          <li key={t.id}>
            <button
              type="button"
              className="nr-ThreadItem"
              onClick={() => setOpen(t.id)}
              data-thread={t.id}
            >
              <span className={`nr-Badge nr-Status-${t.status}`}>
                {t.status}
              </span>
              <span className="nr-ThreadItem-title">{t.title}</span>
              <span className="nr-Meta">
                {t.image ? `image ${t.image} · ` : ''}
                {t.created_by} · {t.post_count} posts · {when(t.updated)}
              </span>
            </button>
          </li>
        ))}
      </ul>
      {page && page.items.length === 0 ? (
        <p className="nr-Empty">No threads yet.</p>
      ) : null}
    </div>
  );
}
